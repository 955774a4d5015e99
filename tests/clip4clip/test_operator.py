"""The clip4clip operator: tokenisation, video input, errors, and scoring like the original."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import vtzoo
from vtzoo.errors import InputError
from vtzoo.operators.base import Embeddings, UnsupportedTask, VtzooError
from vtzoo.operators.clip4clip.golden import config_from_case
from vtzoo.operators.clip4clip.operator import CLIP4ClipOperator, TextTruncatedWarning
from vtzoo.registry.golden import GoldenCase

# vocab of the tiny tokenizer: 2 * 256 byte symbols + 4 merges + SOT + EOT
TINY_CLIP = dict(
    embed_dim=64, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16, vision_heads=1,
    context_length=16, vocab_size=518, transformer_width=64, transformer_heads=1, transformer_layers=1,
)
TINY = dict(clip=TINY_CLIP, cross_hidden_size=64, cross_num_attention_heads=2, cross_num_hidden_layers=1, max_words=8,
            max_frames=4)
CLIP_PROMPT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # CLIP's published ids of "a photo of a cat"


def _operator(tokenizer=None, clip=None, **changes) -> CLIP4ClipOperator:
    config = {**TINY, "clip": {**TINY_CLIP, **(clip or {})}, **changes}
    return vtzoo.create("clip4clip", "vit-b32-zeroshot", weights="random", precision="fp32", tokenizer=tokenizer, **config)


def test_tokenisation_is_the_original_layout(tiny_tokenizer_dir):
    vocab = json.loads((tiny_tokenizer_dir / "vocab.json").read_text())
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    assert eot == max(vocab.values())  # the EOT vector is found by argmax, as in CLIP
    op = _operator(tiny_tokenizer_dir)
    ids, mask = op.tokenize(["The  cat", "a"])
    expected = torch.tensor(
        [[sot, vocab["the</w>"], vocab["cat</w>"], eot, 0, 0, 0, 0], [sot, vocab["a</w>"], eot, 0, 0, 0, 0, 0]]
    )
    assert torch.equal(ids, expected)
    assert torch.equal(mask, (expected != 0).long())


def test_long_text_is_truncated_with_a_warning(tiny_tokenizer_dir):
    vocab = json.loads((tiny_tokenizer_dir / "vocab.json").read_text())
    op = _operator(tiny_tokenizer_dir)
    with pytest.warns(TextTruncatedWarning, match="max_words=8"):
        ids, mask = op.tokenize(["the cat " * 6, "the"])
    the, cat = vocab["the</w>"], vocab["cat</w>"]
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    assert ids[0].tolist() == [sot, the, cat, the, cat, the, cat, eot]  # SOT + 6 pieces + EOT
    assert mask[0].all() and mask[1].sum() == 3


def test_embed_text_pools_the_eot_token(tiny_tokenizer_dir):
    op = _operator(tiny_tokenizer_dir)
    emb = op.embed_text(["the cat", "a cat the"])
    assert emb.pooled.shape == (2, 64) and emb.tokens.shape == (2, 8, 64)
    torch.testing.assert_close(emb.pooled[0], emb.tokens[0, 3])  # SOT the cat EOT
    torch.testing.assert_close(emb.pooled[1], emb.tokens[1, 4])  # SOT a cat the EOT


def test_text_errors(tiny_tokenizer_dir):
    op = _operator(tiny_tokenizer_dir)
    with pytest.raises(VtzooError, match="at least one text .got an empty list"):
        op.embed_text([])
    with pytest.raises(InputError, match="list of strings, got int"):
        op.embed_text([3])


def test_video_tensor_errors():
    op = _operator()
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        op.embed_video(torch.zeros(2, 3, 32))
    with pytest.raises(ValueError, match=r"\(B, T, 3, 32, 32\)"):
        op.embed_video(torch.zeros(2, 4, 3, 224, 224))
    with pytest.raises(ValueError, match=r"\(B, T, 3, 32, 32\)"):
        op.embed_video(torch.zeros(2, 4, 32, 32, 3))  # channels last
    with pytest.raises(ValueError, match=r"mask must be \(B, T\)"):
        op.embed_video(torch.zeros(2, 4, 3, 32, 32), mask=torch.ones(2, 5))
    with pytest.raises(UnsupportedTask):
        op.classify(torch.zeros(1, 4, 3, 32, 32))


@pytest.mark.parametrize("name", ["meanP", "seqTransf", "seqLSTM", "tightTransf", "meanP-3d"])
def test_operator_scores_like_the_original(golden_dir, name):
    case = GoldenCase.open(golden_dir / name)
    config = dataclasses.asdict(config_from_case(case.config))
    weights = str(golden_dir / name / "original_state_dict.safetensors")
    op = vtzoo.create("clip4clip", "vit-b32-zeroshot", weights=weights, precision="fp32", **config)
    inputs, expected = case.inputs(), case.outputs()
    mask = inputs["video_mask"].flatten(0, 1)
    video = inputs["video"].reshape(*mask.shape, *inputs["video"].shape[-3:])
    video_emb = op.embed_video(video, mask=mask)
    with torch.no_grad():
        text = op.model.encode_text(inputs["input_ids"].flatten(0, 1))
    text_emb = Embeddings(pooled=text.pooled, tokens=text.tokens)
    torch.testing.assert_close(video_emb.tokens, expected["visual_output"], atol=2e-5, rtol=0)
    torch.testing.assert_close(op.similarity(text_emb, video_emb), expected["sim_logits"], atol=2e-5, rtol=0)
    assert torch.allclose(video_emb.pooled.norm(dim=-1), torch.ones(len(video_emb)))


def test_example_video_input_fits_the_full_size_config():
    with torch.device("meta"):
        op = vtzoo.create("clip4clip", "vit-b16-zeroshot", weights="random", device="meta", precision="fp32")
    example = op.example_video_input(2)
    assert example.shape == (2, 12, 3, 224, 224)
    assert op.config.clip.vision_patch_size == 16


def test_a_partial_clip_override_keeps_the_cards_other_sizes():
    with torch.device("meta"):
        op = vtzoo.create("clip4clip", "vit-b16-zeroshot", weights="random", device="meta", clip={"vision_layers": 2})
    assert (op.config.clip.vision_layers, op.config.clip.vision_patch_size, op.config.clip.vision_width) == (2, 16, 768)


def test_real_clip_vocabulary_offline():
    vocab = pytest.importorskip("vtzoo.backbones.clip_vocab")
    tokenizer = vocab.load_offline_clip_tokenizer()
    if tokenizer is None:
        pytest.skip("open_clip_torch (which ships CLIP's BPE file) is not installed")
    op = _operator(tokenizer, clip={"vocab_size": 49408}, max_words=10)
    ids, mask = op.tokenize(["a photo of a cat"])
    assert ids[0].tolist() == CLIP_PROMPT_IDS + [0, 0, 0]


@pytest.mark.parametrize("name", ["clip4clip/vit-b32-zeroshot", "drl/vit-b32-msrvtt-wti"])
def test_card_tokenizer_falls_back_to_the_packaged_vocabulary_offline(name, hf_cache, monkeypatch):
    """Nothing cached, no network: the cards' CLIP tokenizer is the BPE file open_clip ships."""
    pytest.importorskip("open_clip")
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with torch.device("meta"):
        op = vtzoo.create(name, weights="random", device="meta", precision="fp32")
    ids, mask = op.tokenize(["a photo of a cat"])
    assert ids.shape == (1, 32) and ids[0, :7].tolist() == CLIP_PROMPT_IDS and not ids[0, 7:].any()
    assert mask[0].tolist() == [1] * 7 + [0] * 25
