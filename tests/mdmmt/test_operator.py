"""The ``mdmmt`` operator through the registry: real mp4 files (with and without audio) to embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.operators.mdmmt.collate import ExpertSequence
from vtzoo.operators.mdmmt.text import mdmmt_tokenize, mmt_tokenize

from .conftest import TINY_EXPERTS, TINY_MDMMT


@pytest.fixture(scope="module")
def mdmmt_op(bert_vocab_dir):
    torch.manual_seed(0)
    return vtzoo.create("mdmmt", weights="random", tokenizer=bert_vocab_dir, expert_weights="random",
                        expert_config=TINY_EXPERTS, **TINY_MDMMT)


def test_raw_videos_with_and_without_audio_track(mdmmt_op, video_with_audio, video_without_audio):
    torch.set_num_threads(2)
    videos = mdmmt_op.embed_video([video_with_audio, video_without_audio])
    assert videos.pooled.shape == (2, 3 * 32) and videos.tokens.shape == (2, 3, 32)
    # expert order VIDEO, CLIP, tf_vggish: the silent video has a missing audio expert
    assert videos.mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert videos.extras["missing"] == [[], ["tf_vggish"]]
    assert torch.allclose(videos.tokens.norm(dim=-1), torch.ones(2, 3), atol=1e-5)
    texts = mdmmt_op.embed_text(["a rabbit in a meadow", "a man on the phone!"])
    sims = mdmmt_op.similarity(texts, videos)
    assert sims.shape == (2, 2)
    # MDMMT's score is the dot product of the weighted text vector with the video vector
    assert torch.allclose(sims, texts.pooled @ videos.pooled.T, atol=1e-6)
    assert torch.allclose(texts.extras["weights"].sum(-1), torch.ones(2), atol=1e-6)

    # the extracted sequences, handed over as precomputed features, give the same embedding
    feats = mdmmt_op._features_of(video_without_audio)
    assert set(feats) == {"VIDEO", "CLIP"} and feats["CLIP"].timings[:2].tolist() == [[0.0, 1.0], [1.0, 2.0]]
    assert torch.allclose(mdmmt_op.embed_video(dict(feats)).pooled, videos.pooled[1:], atol=1e-5)
    # or mixed: precomputed CLIP features, the other experts extracted from the video
    mixed = mdmmt_op.embed_video({"video": video_without_audio, "CLIP": feats["CLIP"]})
    assert torch.allclose(mixed.pooled, videos.pooled[1:], atol=1e-5)


def test_precomputed_features_and_bad_input(mdmmt_op):
    rng = np.random.RandomState(0)
    video = {"CLIP": ExpertSequence(rng.randn(3, 32), [[0, 1], [1, 2], [2, 3]]), "tf_vggish": (rng.randn(2, 128), None)}
    out = mdmmt_op.embed_video([video, {"VIDEO": rng.randn(1, 2048)}])
    assert out.mask.tolist() == [[0, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"expert 'CLIP'.*\(n, 32\)"):
        mdmmt_op.embed_video({"CLIP": rng.randn(3, 31)})
    with pytest.raises(ValueError, match="every expert is missing"):
        mdmmt_op.embed_video({})
    with pytest.raises(ValueError, match="NaN"):
        mdmmt_op.embed_video({"CLIP": (rng.randn(1, 32), [[float("nan"), 1.0]])})
    with pytest.raises(ValueError, match="out of order"):
        mdmmt_op.embed_video({"CLIP": (rng.randn(2, 32), [[3.0, 4.0], [1.0, 2.0]])})
    batch = mdmmt_op.example_video_input(2)
    assert mdmmt_op.embed_video(batch).pooled.shape == (2, 96)


def test_text_preparation(bert_vocab_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bert_vocab_dir)
    enc = mdmmt_tokenize(tok, ["a dog runs", "what?"], max_length=30)
    cls, sep, dot = tok.cls_token_id, tok.sep_token_id, tok.convert_tokens_to_ids(".")
    assert enc["input_ids"][0].tolist() == [cls, *tok.convert_tokens_to_ids(["a", "dog", "runs"]), dot, sep]
    assert enc["input_ids"].shape == (2, 6) and enc["attention_mask"][1].tolist() == [1, 1, 1, 1, 0, 0]
    mmt = mmt_tokenize(tok, ["A Dog runs over the green field today"], max_length=6)
    # [CLS] + tokens cut to 6 with the last one forced to [SEP]; always padded to max_length
    assert mmt["input_ids"][0].tolist() == [cls, *tok.convert_tokens_to_ids(["a", "dog", "runs", "over"]), sep]
    assert mmt_tokenize(tok, ["hi"], max_length=6)["input_ids"][0].tolist() == [cls, tok.convert_tokens_to_ids("hi"), dot, sep, 0, 0]


def test_mmt_variant_scores_missing_experts_both_ways(bert_vocab_dir, video_without_audio):
    experts = [{"name": "s3d", "dim": 6, "idx": 1, "max_tok": 4}, {"name": "vggish", "dim": 5, "idx": 2, "max_tok": 4}]
    torch.manual_seed(0)
    op = vtzoo.create("mdmmt/mmt-msrvtt-1ka", weights="random", tokenizer=bert_vocab_dir, experts=experts, same_dim=16,
                      hidden_size=16, num_attention_heads=2, intermediate_size=32, num_hidden_layers=1,
                      text_bert=dict(TINY_MDMMT["text_bert"]))
    rng = np.random.RandomState(1)
    videos = op.embed_video([{"s3d": (rng.randn(6, 6), None), "vggish": (rng.randn(3, 5), None)}, {"s3d": (rng.randn(2, 6), None)}])
    texts = op.embed_text(["someone cooks", "a dog barks", "music", "rain falls"])
    keep = op.similarity(texts, videos)
    w = texts.extras["weights"]
    dots = torch.einsum("imd,jmd->ijm", texts.tokens, videos.tokens)
    assert torch.allclose(keep, (w[:, None] * dots).sum(-1), atol=1e-5)
    op.model.config.keep_missing_modalities = False
    drop = op.similarity(texts, videos)
    assert torch.allclose(drop[:, 1], dots[:, 1, 0], atol=1e-5)  # video 1 has s3d only
    assert torch.allclose(drop[:, 0], keep[:, 0], atol=1e-6)
    assert op.similarity(texts, videos, captions_per_video=2).shape == (2, 2)
    with pytest.raises(ValueError, match="no bundled feature extractors"):
        op.embed_video(video_without_audio)


def test_expert_cards_through_the_registry(video_with_audio, video_without_audio):
    assert {"mdmmt/expert-vggish", "mdmmt/expert-ircsn152-ig65m", "mdmmt/expert-clip-vit-b32"} <= set(vtzoo.registry.list_cards("mdmmt"))
    torch.manual_seed(0)
    op = vtzoo.create("mdmmt/expert-vggish", weights="random")
    emb = op.embed_video([video_with_audio, video_without_audio])
    assert emb.tokens.shape == (2, 5, 128) and emb.mask.sum(1).tolist() == [5, 0]
    assert emb.extras["timings"][0][-1].tolist() == [3.84, 4.8]
    assert (emb.tokens >= 0).all()  # MDMMT's feature is ReLU(fc2 pre-activation)
    with pytest.raises(vtzoo.VtzooError, match="expert .VIDEO. .*expert_weights"):
        vtzoo.create("mdmmt/mdmmt-3mod", weights="random", **TINY_MDMMT).embed_video(video_with_audio)
