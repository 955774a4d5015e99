"""Converters: original CLIP4Clip, plain OpenAI CLIP and transformers CLIP checkpoints.

Expected values come from the golden fixtures (outputs of the original code) or from
transformers' own ``CLIPModel`` forward, never from the code under test.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vtzoo.backbones.clip import CLIPTowers, convert_openai_clip_state_dict
from vtzoo.modeling import PartialStateDict
from vtzoo.operators.clip4clip import CLIP4ClipModel
from vtzoo.operators.clip4clip.convert import (
    convert_openai_clip_checkpoint,
    convert_original_state_dict,
    convert_transformers_clip_checkpoint,
)
from vtzoo.operators.clip4clip.model import UntrainedHeadWarning
from vtzoo.operators.clip4clip.golden import config_from_case
from vtzoo.registry.golden import GoldenCase
from vtzoo.registry.weights import WeightsError, load_state_dict_strict

ATOL = 2e-5


def _case(golden_dir, name):
    case = GoldenCase.open(golden_dir / name)
    inputs = case.inputs()
    ids = inputs["input_ids"].reshape(-1, inputs["input_ids"].shape[-1])
    mask = inputs["video_mask"].reshape(-1, inputs["video_mask"].shape[-1])
    video = inputs["video"].reshape(mask.shape[0], mask.shape[1], *inputs["video"].shape[-3:])
    return case, config_from_case(case.config), ids, video, mask, case.outputs()


def _openai_part(state_dict):
    return {k[len("clip.") :]: v for k, v in state_dict.items() if k.startswith("clip.")}


def _run(model, ids, video, mask):
    model.eval()
    with torch.no_grad():
        text = model.encode_text(ids).pooled
        frames = model.encode_frames(video)
        return text, frames, model.similarity_logits(text, frames, mask)


def _assert_matches(expected, text, frames, logits):
    torch.testing.assert_close(text, expected["sequence_output"].squeeze(1), atol=ATOL, rtol=0)
    torch.testing.assert_close(frames, expected["visual_output"], atol=ATOL, rtol=0)
    torch.testing.assert_close(logits, expected["sim_logits"], atol=ATOL, rtol=0)


def test_openai_clip_checkpoint_gives_the_original_meanP(golden_dir):
    case, config, ids, video, mask, expected = _case(golden_dir, "meanP")
    openai = _openai_part(case.original_state_dict())  # meanP has no head: CLIP only
    model = CLIP4ClipModel(config)
    load_state_dict_strict(model, convert_openai_clip_checkpoint(openai, config))
    _assert_matches(expected, *_run(model, ids, video, mask))


def test_transformers_clip_matches_the_original_and_converts(golden_dir):
    from transformers import CLIPModel

    case, config, ids, video, mask, expected = _case(golden_dir, "meanP")
    towers = convert_openai_clip_state_dict(case.original_state_dict(), prefix="clip.")
    hf = CLIPModel(config.clip.transformers_config()).eval()
    hf.load_state_dict(towers, strict=True)  # our key layout is transformers' CLIPModel layout
    with torch.no_grad():  # transformers' own forward reproduces the original's CLIP outputs
        text = hf.get_text_features(input_ids=ids).pooler_output
        image = hf.get_image_features(pixel_values=video.flatten(0, 1)).pooler_output
    torch.testing.assert_close(text, expected["sequence_output"].squeeze(1), atol=ATOL, rtol=0)
    torch.testing.assert_close(image.view_as(expected["visual_output"]), expected["visual_output"], atol=ATOL, rtol=0)

    model = CLIP4ClipModel(config)
    load_state_dict_strict(model, convert_transformers_clip_checkpoint(hf.state_dict(), config))
    _assert_matches(expected, *_run(model, ids, video, mask))


def test_3d_patch_from_clip_is_the_inflated_2d_kernel(golden_dir):
    case, config, ids, video, mask, expected = _case(golden_dir, "meanP")
    config = dataclasses.replace(config, linear_patch="3d")
    openai = _openai_part(case.original_state_dict())
    converted = convert_openai_clip_checkpoint(openai, config)
    kernel = converted["clip.patch_embedding_3d.weight"]
    assert kernel.shape == (*openai["visual.conv1.weight"].shape[:2], 3, *openai["visual.conv1.weight"].shape[2:])
    torch.testing.assert_close(kernel[:, :, 1], openai["visual.conv1.weight"].float(), atol=0, rtol=0)
    assert not kernel[:, :, 0].any() and not kernel[:, :, 2].any()
    model = CLIP4ClipModel(config)
    load_state_dict_strict(model, converted)
    # zero outer taps: the 3D model starts out computing exactly the 2D frame features
    _assert_matches(expected, *_run(model, ids, video, mask))


def _from_clip_file(openai, config, tmp_path, seed=0):
    """A CLIP4Clip loaded from a plain OpenAI CLIP file through the one loading path."""
    from safetensors.torch import save_file

    path = tmp_path / "openai-clip.safetensors"
    if not path.exists():
        save_file({k: v.contiguous() for k, v in openai.items()}, str(path))
    return CLIP4ClipModel.from_pretrained(str(path), seed=seed, **dataclasses.asdict(config))


def test_zero_shot_heads_follow_the_initialization_trick(golden_dir, tmp_path):
    case, config, *_ = _case(golden_dir, "seqTransf")
    openai = _openai_part(case.original_state_dict())
    width = config.clip.transformer_width
    for header in ("seqLSTM", "seqTransf", "tightTransf"):
        head_config = dataclasses.replace(config, sim_header=header)
        converted = convert_openai_clip_checkpoint(openai, head_config)
        assert isinstance(converted, PartialStateDict) and all(k.startswith("clip.") for k in converted)
        with pytest.warns(UntrainedHeadWarning):
            model = _from_clip_file(openai, head_config, tmp_path)
        heads = model.state_dict()
        positions = openai["positional_embedding"].float()
        q_weight = openai["transformer.resblocks.1.attn.in_proj_weight"].float()[:width]
        if header in ("seqLSTM", "seqTransf"):
            torch.testing.assert_close(heads["frame_position_embeddings.weight"], positions, atol=0, rtol=0)
        if header == "seqTransf":
            got = heads["transformerClip.encoder.layers.1.self_attn.q_proj.weight"]
            torch.testing.assert_close(got, q_weight, atol=0, rtol=0)
        if header == "tightTransf":
            torch.testing.assert_close(heads["cross.position_embeddings.weight"], positions, atol=0, rtol=0)
            got = heads["cross.transformer.encoder.layers.1.self_attn.q_proj.weight"]
            torch.testing.assert_close(got, q_weight, atol=0, rtol=0)
            assert torch.equal(heads["cross.ln_pool.weight"], torch.ones(width))
            assert not heads["similarity_dense.bias"].any()
            assert heads["similarity_dense.weight"].std() == pytest.approx(0.02, rel=0.5)  # N(0, 0.02)


def test_random_part_of_the_head_follows_the_seed(golden_dir, tmp_path):
    case, config, *_ = _case(golden_dir, "seqLSTM")
    openai = _openai_part(case.original_state_dict())
    with pytest.warns(UntrainedHeadWarning):
        first, again, other = (_from_clip_file(openai, config, tmp_path, seed) for seed in (0, 0, 1))
    lstm = "lstm_visual.weight_ih_l0"
    assert torch.equal(first.state_dict()[lstm], again.state_dict()[lstm])
    assert not torch.equal(first.state_dict()[lstm], other.state_dict()[lstm])
    clip = "clip.text_model.encoder.layers.0.self_attn.q_proj.weight"  # loaded, not drawn
    assert torch.equal(first.state_dict()[clip], other.state_dict()[clip])


def test_original_checkpoint_file_round_trip(golden_dir, tmp_path):
    case, config, ids, video, mask, expected = _case(golden_dir, "seqLSTM")
    checkpoint = tmp_path / "pytorch_model.bin"  # the original names it pytorch_model.bin.<epoch>: rename first (see docs)
    torch.save(case.original_state_dict(), checkpoint)  # what the original's save_model writes
    model = CLIP4ClipModel.from_pretrained(str(checkpoint), **dataclasses.asdict(config))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp16 CLIP weights cast on load
    _assert_matches(expected, *_run(model, ids, video, mask))
    saved = CLIP4ClipModel.from_pretrained(str(model.save_pretrained(tmp_path / "vtzoo")))
    assert saved.config == config
    _assert_matches(expected, *_run(saved, ids, video, mask))


def test_a_checkpoint_of_another_head_is_refused(golden_dir, tmp_path):
    case, config, *_ = _case(golden_dir, "seqTransf")
    meanp = dataclasses.replace(config, sim_header="meanP")
    with pytest.raises(WeightsError, match="transformerClip"):
        load_state_dict_strict(CLIP4ClipModel(meanp), convert_original_state_dict(case.original_state_dict(), meanp))
    path = tmp_path / "seqtransf.safetensors"
    from safetensors.torch import save_file

    save_file(case.original_state_dict(), str(path))
    with pytest.raises(WeightsError):  # no format silently drops the trained head
        CLIP4ClipModel.from_pretrained(str(path), **dataclasses.asdict(meanp))


def test_openai_converter_names_unknown_keys(golden_dir):
    case, config, *_ = _case(golden_dir, "meanP")
    openai = _openai_part(case.original_state_dict())
    openai["visual.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="visual.extra.weight"):
        convert_openai_clip_checkpoint(openai, config)


def test_towers_expose_projected_tokens(golden_dir):
    case, config, ids, *_ , expected = _case(golden_dir, "meanP")
    towers = CLIPTowers(config.clip).eval()
    towers.load_state_dict(convert_openai_clip_state_dict(case.original_state_dict(), prefix="clip."))
    with torch.no_grad():
        out = towers.encode_text(ids)
    lengths = torch.tensor([7, 12, 4])  # the fixture's valid lengths: EOT is the last valid token
    assert torch.equal(out.eot_index, lengths - 1)
    assert out.tokens.shape == (3, 12, config.clip.embed_dim)
    eot_tokens = out.tokens[torch.arange(3), lengths - 1]
    torch.testing.assert_close(eot_tokens, expected["sequence_output"].squeeze(1), atol=ATOL, rtol=0)
