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
    # weights="random": the experts are untrained too, each seeded from seed
    return vtzoo.create("mdmmt", weights="random", tokenizer=bert_vocab_dir, expert_config=TINY_EXPERTS,
                        precision="fp32", **TINY_MDMMT)


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

    # every video says what decoded it, and each expert's part
    with_audio, silent = videos.extras["provenance"]
    assert with_audio["source"] == video_with_audio and with_audio["backend"] in ("decord", "pyav")
    assert set(with_audio["experts"]) == {"VIDEO", "CLIP", "tf_vggish"}
    assert with_audio["experts"]["CLIP"]["indices"] == [0, 25, 50, 75, 100, 125]  # 1 fps of a 25 fps video
    assert silent["experts"]["tf_vggish"]["source"] == video_without_audio
    # the extracted sequences, handed over as precomputed features, give the same embedding
    feats, _ = mdmmt_op._features_of(video_without_audio)
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
    op = vtzoo.create("mdmmt/mmt-msrvtt-1ka", weights="random", tokenizer=bert_vocab_dir, experts=experts, same_dim=16,
                      hidden_size=16, num_attention_heads=2, intermediate_size=32, num_hidden_layers=1,
                      text_bert=dict(TINY_MDMMT["text_bert"]), precision="fp32")
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


def test_experts_are_operators_of_their_own_with_their_tasks(video_with_audio, video_without_audio):
    from vtzoo.operators.base import VIDEO_EMBEDDING
    from vtzoo.registry.operators import get_operator_class

    for name, card in (("vggish", "vggish/audioset"), ("ircsn152", "ircsn152/ig65m"), ("clip_frames", "clip_frames/vit-b32")):
        assert name in vtzoo.list_operators() and card in vtzoo.registry.list_cards(name)
        assert get_operator_class(name).tasks == {VIDEO_EMBEDDING}  # video only: no text tasks for an audio expert
    assert not [c for c in vtzoo.registry.list_cards("mdmmt") if "expert" in c]
    op = vtzoo.create("vggish", weights="random", conv_channels=(8, 16, 16, 32), hidden_size=64)
    emb = op.embed_video([video_with_audio, video_without_audio])
    assert emb.tokens.shape == (2, 5, 128) and emb.mask.sum(1).tolist() == [5, 0]
    assert emb.extras["timings"][0][-1].tolist() == [3.84, 4.8]
    assert (emb.tokens >= 0).all()  # MDMMT's feature is ReLU(fc2 pre-activation)
    assert [p["source"] for p in emb.extras["provenance"]] == [video_with_audio, video_without_audio]
    assert emb.extras["provenance"][0]["sample_rate"] == 48000


def test_vtzoo_list_shows_each_expert_with_video_embedding_only(capsys):
    from vtzoo.cli import main

    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in ("vggish", "ircsn152", "clip_frames"):
        assert "video-embedding" in rows[name] and "text-embedding" not in rows[name]
    assert "text-embedding" in rows["mdmmt"]


def test_trained_mdmmt_without_expert_weights_says_how_to_get_them(tmp_path, video_with_audio):
    vtzoo.create("mdmmt/mdmmt-3mod", weights="random", **TINY_MDMMT).model.save_pretrained(tmp_path / "mdmmt")
    op = vtzoo.create("mdmmt/mdmmt-3mod", weights=str(tmp_path / "mdmmt"))
    with pytest.raises(vtzoo.VtzooError, match="expert .VIDEO. .*expert_weights"):
        op.embed_video(video_with_audio)


def test_expert_config_is_checked_at_create():
    from vtzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="'VIDOE'.*Did you mean: VIDEO"):
        vtzoo.create("mdmmt", weights="random", expert_config={"VIDOE": {"fps": 2.0}}, **TINY_MDMMT)
    with pytest.raises(ConfigError, match=r"expert_config\['CLIP'\].*'szie'.*Did you mean: size"):
        vtzoo.create("mdmmt", weights="random", expert_config={"CLIP": {"szie": 36}}, **TINY_MDMMT)


def test_random_experts_are_seeded_apart_and_alike_in_any_order(bert_vocab_dir):
    def expert_weights(seed: int, noise: int) -> dict[str, dict[str, torch.Tensor]]:
        torch.manual_seed(noise)  # whatever the global RNG did before does not matter
        op = vtzoo.create("mdmmt", weights="random", seed=seed, expert_config=TINY_EXPERTS, **TINY_MDMMT)
        return {name: expert.model.state_dict() for name, expert in op.experts.items()}

    first, again, other = expert_weights(0, noise=1), expert_weights(0, noise=2), expert_weights(1, noise=1)
    assert set(first) == {"VIDEO", "CLIP", "tf_vggish"}
    for name, tensors in first.items():
        assert all(torch.equal(v, again[name][k]) for k, v in tensors.items()), name
        moving = [k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1]
        assert any(not torch.equal(tensors[k], other[name][k]) for k in moving), name
    # each expert has a seed of its own (seed + 1 + its index), not the model's
    op = vtzoo.create("mdmmt", weights="random", seed=0, expert_config=TINY_EXPERTS, **TINY_MDMMT)
    assert op.experts["CLIP"].options.seed == 2 and op.experts["tf_vggish"].options.seed == 3


def test_tokenizer_offline_and_not_cached_fails_fast_with_the_offline_error(tmp_path, monkeypatch):
    """The card's tokenizer goes through vtzoo's Hub client: offline with an empty cache, a
    OfflineNotCachedError at once (not transformers' retries and a raw OSError)."""
    from huggingface_hub import constants

    from vtzoo.registry.errors import OfflineNotCachedError

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    op = vtzoo.create("mdmmt", weights="random", **TINY_MDMMT)
    with pytest.raises(OfflineNotCachedError, match="google-bert/bert-base-cased@main are not in the local Hub cache"):
        op.embed_text(["a dog runs"])
