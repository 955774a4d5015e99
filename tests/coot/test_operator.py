"""The coot operator on precomputed features: the fixture's embeddings through the registry,
both levels of the common interface, and bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.operators.base import Embeddings
from vtzoo.operators.coot import CootInputError
from vtzoo.operators.coot.inputs import CootTextFeatures, CootTruncationWarning, CootVideoFeatures, subsample_indices

from .conftest import CREATE, fixture_paragraphs, fixture_videos


@pytest.fixture(scope="module")
def layout(yc2_case):
    return json.loads((yc2_case["path"] / "config.json").read_text())["batch_layout"]


@pytest.fixture(scope="module")
def padded_operator(yc2_case, tiny_bert, vocab_file):
    """pad_to=3: the global nets see the padding of the fixture's batch (3 clips), as the original."""
    return vtzoo.create("coot", "youcook2-s3d", weights=str(yc2_case["weights"]), video_feature_dim=48,
                        pad_to=3, text_model=tiny_bert, tokenizer=vocab_file, **CREATE)  # fmt: skip


def test_registered_with_its_tasks(yc2_operator):
    from vtzoo.registry.operators import get_operator_class

    assert get_operator_class("coot") is type(yc2_operator)
    assert yc2_operator.name == "coot" and yc2_operator.card.name == "coot/youcook2-s3d"
    assert yc2_operator.tasks == {"video-embedding", "text-embedding", "video-text-similarity"}


def test_video_level_reproduces_the_original(padded_operator, yc2_case, layout):
    out, ref = padded_operator.embed_video(fixture_videos(yc2_case["inputs"], layout)), yc2_case["outputs"]
    assert isinstance(out, Embeddings) and out.pooled.shape == (2, 64)
    assert torch.allclose(out.pooled, ref["vid_emb"], atol=1e-5)
    assert torch.allclose(out.tokens, ref["clip_emb_reshape"], atol=1e-5)
    assert torch.equal(out.mask, (~ref["clip_emb_mask"]).long())
    assert torch.allclose(out.extras["context"], ref["vid_context"], atol=1e-5)


def test_text_level_reproduces_the_original(padded_operator, yc2_case, layout):
    out, ref = padded_operator.embed_text(fixture_paragraphs(yc2_case["inputs"], layout)), yc2_case["outputs"]
    assert torch.allclose(out.pooled, ref["par_emb"], atol=1e-5)
    assert torch.allclose(out.tokens, ref["sent_emb_reshape"], atol=1e-5)
    assert torch.allclose(out.extras["context"], ref["par_context"], atol=1e-5)


def test_similarity_at_both_levels(padded_operator, yc2_case, layout):
    video = padded_operator.embed_video(fixture_videos(yc2_case["inputs"], layout))
    text = padded_operator.embed_text(fixture_paragraphs(yc2_case["inputs"], layout))
    ref = yc2_case["outputs"]
    assert torch.allclose(padded_operator.similarity(text, video), ref["sim_vid_par"].T, atol=1e-5)
    clip_level = padded_operator.similarity(text, video, level="clip")
    assert clip_level.shape == (5, 5)
    assert torch.allclose(clip_level, ref["sim_clip_sent"].T, atol=1e-5)


def test_default_encoding_does_not_depend_on_the_batch(yc2_operator, yc2_case, layout):
    videos = fixture_videos(yc2_case["inputs"], layout)
    together = yc2_operator.embed_video(videos)
    alone = yc2_operator.embed_video([videos[0]])
    assert torch.allclose(together.pooled[0], alone.pooled[0], atol=1e-6)
    # video 1 has the batch's largest clip count: no padding in the original either
    assert torch.allclose(together.pooled[1], yc2_case["outputs"]["vid_emb"][1], atol=1e-5)
    # video 0 (2 clips) was padded to 3 in the original batch: avg_special saw the padding
    assert not torch.allclose(together.pooled[0], yc2_case["outputs"]["vid_emb"][0], atol=1e-3)


def test_feature_forms(yc2_operator, yc2_case, layout):
    video = fixture_videos(yc2_case["inputs"], layout)[1]
    as_dict = yc2_operator.embed_video({"features": video.features, "clips": video.clips})
    assert torch.equal(as_dict.pooled, yc2_operator.embed_video(video).pooled)
    # a plain (T, D) tensor = one clip spanning the video; seconds need segments + 1 feature/s
    plain = yc2_operator.embed_video(video.features)
    assert plain.mask.tolist() == [[1]]
    by_seconds = yc2_operator.embed_video(video.features, segments=[[(0.0, 1.5), (4.0, 8.0)]])
    # steps: floor(0) .. ceil(1.5) + 2 = 4, and floor(4) .. ceil(8) + 2 = 10
    expected = yc2_operator.embed_video(CootVideoFeatures(video.features, [(0, 4), (4, 10)]))
    assert torch.equal(by_seconds.pooled, expected.pooled)


def test_from_seconds_expands_short_segments():
    feats = torch.zeros(30, 4)
    video = CootVideoFeatures.from_seconds(feats, duration=30.0, segments=[(10.0, 10.5), (29.5, 28.0)],
                                           add_stop_frame=1, expand_segments=10)  # fmt: skip
    # (10, 12) widened alternately earlier/later to 10 steps; the reversed one is swapped, clamped
    assert video.clips == [(6, 16), (20, 30)]


def test_clip_level_operator(yc2_case, tiny_bert, vocab_file, layout):
    op = vtzoo.create("coot", "youcook2-s3d", weights=str(yc2_case["weights"]), video_feature_dim=48, level="clip",
                      text_model=tiny_bert, tokenizer=vocab_file, **CREATE)  # fmt: skip
    x, ref = yc2_case["inputs"], yc2_case["outputs"]
    clips = [CootVideoFeatures(x["clip_feat"][i, : int(x["clip_feat_len"][i])]) for i in range(5)]
    sents = [CootTextFeatures(x["sent_feat"][i, : int(x["sent_feat_len"][i])], [int(x["sent_feat_len"][i])])
             for i in range(5)]  # fmt: skip
    v, t = op.embed_video(clips), op.embed_text(sents)
    assert v.pooled.shape == (5, 32) and torch.allclose(v.pooled, ref["clip_emb"], atol=1e-5)
    assert torch.allclose(t.pooled, ref["sent_emb"], atol=1e-5)
    assert torch.allclose(op.similarity(t, v), ref["sim_clip_sent"].T, atol=1e-5)
    # raw sentences: one row each
    assert op.embed_text(["cut the onion", "boil the water"]).pooled.shape == (2, 32)


def test_text_input_shapes(yc2_operator):
    one = yc2_operator.embed_text([["Cut the onions.", "Fry them"]])  # one paragraph of two sentences
    assert one.pooled.shape == (1, 64) and one.mask.tolist() == [[1, 1]]
    two = yc2_operator.embed_text([["Cut the onions.", "Fry them"], ["Boil water"]])
    assert two.pooled.shape == (2, 64) and two.mask.tolist() == [[1, 1], [1, 0]]
    assert torch.allclose(two.pooled[0], one.pooled[0], atol=1e-6)
    # n strings are n texts (each a paragraph of one sentence), as for every operator
    texts = yc2_operator.embed_text(["Cut the onions.", "Fry them", "Boil water"])
    assert texts.pooled.shape == (3, 64) and texts.mask.tolist() == [[1], [1], [1]]
    assert torch.allclose(texts.pooled[2], two.pooled[1], atol=1e-6)
    assert torch.allclose(yc2_operator.embed_text("Fry them").pooled, texts.pooled[1:2], atol=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.randn(10, 47), r"\(T, 48\)"),
        (CootVideoFeatures(torch.randn(10, 47)), "takes 48"),
        ({"features": torch.randn(10, 48), "clips": [(2, 2)]}, "zero frames"),
        ({"features": torch.randn(0, 48)}, "zero frames"),
        (42, "cannot read a video"),
    ],
)
def test_bad_video_input(yc2_operator, bad, message):
    with pytest.raises(CootInputError, match=message):
        yc2_operator.embed_video(bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[]], "zero"),
        ({"features": torch.randn(5, 39), "sentence_lengths": [5]}, "takes 40"),
        ({"features": torch.randn(5, 40), "sentence_lengths": []}, "at least one sentence"),
        ({"features": torch.randn(5, 40), "sentence_lengths": [2, 2]}, "sum to 4"),
    ],
)
def test_bad_text_input(yc2_operator, bad, message):
    with pytest.raises(CootInputError, match=message):
        yc2_operator.embed_text(bad)


def test_more_frames_than_max_frames_are_sampled_with_a_warning(yc2_operator):
    # the original's evaluation rule: floor(k * 100 / 80 + 100 / 160)
    assert subsample_indices(100, 80)[:5].tolist() == [0, 1, 3, 4, 5]
    assert subsample_indices(100, 80)[-1] == 99
    feats = torch.randn(100, 48)
    with pytest.warns(CootTruncationWarning, match="max_frames=80"):
        long = yc2_operator.embed_video(feats)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = yc2_operator.embed_video(feats[torch.from_numpy(subsample_indices(100, 80))])
    assert torch.equal(long.pooled, short.pooled)


def test_more_clips_than_max_clips_are_cut_with_a_warning(yc2_case):
    op = vtzoo.create("coot", "youcook2-s3d", weights=str(yc2_case["weights"]), video_feature_dim=48, max_clips=2,
                      **CREATE)  # fmt: skip
    video = CootVideoFeatures(torch.randn(9, 48), [(0, 3), (3, 6), (6, 9)])
    with pytest.warns(CootTruncationWarning, match="first 2"):
        out = op.embed_video(video)
    assert out.tokens.shape[1] == 2
    assert torch.equal(out.pooled, op.embed_video(CootVideoFeatures(video.features, video.clips[:2])).pooled)


def test_raw_video_without_s3d_weights_says_what_to_do(tmp_path):
    from vtzoo.registry.weights import WeightsError

    # trained weights (a saved model of 512-d video features) come without their S3D
    vtzoo.create("coot", "youcook2-s3d", weights="random", **CREATE).model.save_pretrained(tmp_path / "coot")
    op = vtzoo.create("coot", "youcook2-s3d", weights=str(tmp_path / "coot"), precision="fp32")
    assert op.s3d is None and op.video_input is None
    with pytest.raises(WeightsError, match="s3d_weights"):
        op.embed_video(np.zeros((4, 32, 32, 3), dtype=np.uint8))


def test_raw_video_for_a_non_s3d_variant_is_refused(yc2_case):
    op = vtzoo.create("coot", "activitynet", weights="random", video_feature_dim=56, s3d_weights="random", **CREATE)
    with pytest.raises(CootInputError, match="512-d S3D"):
        op.embed_video(np.zeros((4, 32, 32, 3), dtype=np.uint8))


def test_example_video_input_runs(yc2_operator):
    out = yc2_operator.embed_video(yc2_operator.example_video_input(2, 20))
    assert out.pooled.shape == (2, 64) and out.tokens.shape == (2, 4, 32)
