"""DRL model: config checks, full-size parameter counts, converters and their errors, the loss."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vtzoo.backbones.clip import CLIPSizes
from vtzoo.modeling import PartialStateDict
from vtzoo.operators.drl import DRLConfig, DRLModel, convert_original_state_dict, describe_checkpoint
from vtzoo.operators.drl.convert import convert_clip_state_dict
from vtzoo.operators.drl.golden import config_from_case
from vtzoo.registry.weights import WeightsError, load_state_dict_strict

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "drl"




def _case(name: str):
    config = config_from_case(json.loads((CASES / name / "config.json").read_text()))
    return config, load_file(str(CASES / name / "original_state_dict.safetensors"))


# Counted by building the original DRL(args) (tvr/models/modeling.py at 475f96c) around a CLIP of
# the published ViT-B/32 / ViT-B/16 shapes.
ORIGINAL_PARAMETER_COUNTS = {
    (32, "wti", "seqTransf", 2): 164_452_611,
    (16, "wti", "seqTransf", 2): 162_796_035,
    (32, "xti", "None", 2): 164_190_466,
    (32, "ti", "seqLSTM", 2): 153_417_985,
}


@pytest.mark.parametrize("key", list(ORIGINAL_PARAMETER_COUNTS), ids=lambda k: "-".join(map(str, k)))
def test_full_size_parameter_count_matches_original(key):
    patch, interaction, agg, arch = key
    with torch.device("meta"):  # constructed, never run
        clip = CLIPSizes.of_release(f"ViT-B/{patch}")
        model = DRLModel(DRLConfig(clip=clip, interaction=interaction, agg_module=agg, wti_arch=arch))
    assert sum(p.numel() for p in model.parameters()) == ORIGINAL_PARAMETER_COUNTS[key]


def test_default_config_is_the_paper_setting():
    c = DRLConfig()
    assert (c.interaction, c.agg_module, c.wti_arch, c.cdcr, c.max_words, c.max_frames) == ("wti", "seqTransf", 2, 3, 32, 12)
    assert (c.clip.transformer_heads, c.clip.vision_heads, c.temporal_layers, c.cross_heads) == (8, 12, 4, 8)
    assert c.clip == CLIPSizes.of_release("ViT-B/32")


def test_from_original_reads_the_original_arguments():
    """The original's argparse names, flat: the CLIP sizes come from --base_encoder."""
    args = {"interaction": "xti", "agg_module": "seqTransf", "base_encoder": "ViT-B/16", "cdcr": 0, "max_words": 24,
            "cross_num_hidden_layers": 2, "world_size": 1}
    config = DRLConfig.from_original(args)
    assert config == DRLConfig(clip=CLIPSizes(vision_patch_size=16), interaction="xti", cdcr=0, max_words=24,
                               cross_layers=2, temporal_layers=2)
    with pytest.raises(ValueError, match="unsupported base_encoder 'RN50'"):
        DRLConfig.from_original({**args, "base_encoder": "RN50"})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"interaction": "mlp"}, "interaction"),
        ({"agg_module": "meanP"}, "agg_module"),
        ({"wti_arch": 4}, "wti_arch"),
        ({"cdcr": 5}, "cdcr"),
        ({"clip": CLIPSizes(embed_dim=256)}, "clip.embed_dim == clip.transformer_width"),
    ],
)
def test_config_rejects_what_the_original_cannot_build(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DRLConfig(**kwargs)


def test_describe_checkpoint_reads_the_variant_from_keys():
    for name, expected in [
        ("wti", {"interaction": "wti", "agg_module": "seqTransf", "wti_arch": 2}),
        ("wti_arch1_none_cdcr1", {"interaction": "wti", "agg_module": "None", "wti_arch": 1}),
        ("wti_arch3_seqlstm_cdcr2", {"interaction": "wti", "agg_module": "seqLSTM", "wti_arch": 3}),
        ("xti_none", {"interaction": "xti", "agg_module": "None", "cross_layers": 2}),
        ("dp_none_cdcr3", {"interaction": "ti-or-dp", "agg_module": "None"}),
    ]:
        assert describe_checkpoint(_case(name)[1]) == expected


def test_checkpoint_of_another_configuration_names_both_sides():
    config, sd = _case("wti")
    config.interaction = "xti"
    with pytest.raises(WeightsError, match=r"interaction: checkpoint 'wti', config 'xti'.*interaction='wti'"):
        convert_original_state_dict(sd, config)


def test_checkpoint_of_another_family_is_refused_with_what_was_expected():
    config, _ = _case("wti")
    foreign = {"video_model.patch_embed.proj.weight": torch.zeros(4, 3, 2, 2), "txt_proj.0.weight": torch.zeros(4, 4)}
    with pytest.raises(WeightsError, match=r"not an original DRL checkpoint: expected CLIP under 'clip\.'"):
        convert_original_state_dict(foreign, config)


def test_converted_checkpoint_reproduces_fixture_and_casts_fp16():
    config, sd = _case("wti")
    assert any(v.dtype == torch.float16 for v in sd.values())
    converted = convert_original_state_dict(sd, config)
    assert all(v.dtype == torch.float32 for v in converted.values() if v.is_floating_point())
    model = DRLModel(config).eval()
    load_state_dict_strict(model, converted)
    inputs = load_file(str(CASES / "wti" / "inputs.safetensors"))
    expected = load_file(str(CASES / "wti" / "outputs.safetensors"))
    with torch.no_grad():
        logits = model(inputs["text_ids"], inputs["text_mask"], inputs["video"], inputs["video_mask"])
    torch.testing.assert_close(logits, expected["t2v_logits"], atol=1e-5, rtol=0)


def _from_clip_file(openai_clip, config, tmp_path, seed=0) -> DRLModel:
    """A DRL model started from a plain OpenAI CLIP file through the one loading path."""
    from safetensors.torch import save_file

    path = tmp_path / "openai-clip.safetensors"
    if not path.exists():
        save_file({k: v.contiguous() for k, v in openai_clip.items()}, str(path))
    return DRLModel.from_pretrained(str(path), seed=seed, **dataclasses.asdict(config))


def test_clip_init_applies_the_original_initialisation_trick(tmp_path):
    config, sd = _case("wti")
    openai_clip = {k[len("clip."):]: v for k, v in sd.items() if k.startswith("clip.")}
    converted = convert_clip_state_dict(openai_clip, config)
    assert isinstance(converted, PartialStateDict) and all(k.startswith("clip.") for k in converted)
    model = _from_clip_file(openai_clip, config, tmp_path)
    text_pos = openai_clip["positional_embedding"].float()
    torch.testing.assert_close(model.frame_position_embeddings.weight, text_pos)
    q_text = openai_clip["transformer.resblocks.1.attn.in_proj_weight"].float().chunk(3)[0]
    torch.testing.assert_close(model.transformerClip.encoder.layers[1].self_attn.q_proj.weight, q_text)
    # layers past the text tower's depth (2 here) keep their init, as in the original
    assert model.transformerClip.encoder.layers[3].layer_norm1.weight.eq(1).all()
    assert model.text_weight_fc[0].bias.eq(0).all()
    assert model.text_weight_fc[0].weight.std().item() == pytest.approx(0.02, rel=0.2)  # N(0, 0.02)
    inputs = load_file(str(CASES / "wti" / "inputs.safetensors"))
    with torch.no_grad():
        text = model.encode_text(inputs["text_ids"])
    torch.testing.assert_close(text, load_file(str(CASES / "wti" / "outputs.safetensors"))["text_feat"], atol=1e-5, rtol=0)
    with pytest.raises(WeightsError, match="not a bare CLIP"):
        convert_clip_state_dict(sd, config)


def test_random_heads_follow_the_seed(tmp_path):
    config, sd = _case("wti")
    openai_clip = {k[len("clip."):]: v for k, v in sd.items() if k.startswith("clip.")}
    first, again, other = (_from_clip_file(openai_clip, config, tmp_path, seed).state_dict() for seed in (0, 0, 1))
    drawn, loaded = "video_weight_fc.0.weight", "clip.visual_projection.weight"
    assert torch.equal(first[drawn], again[drawn]) and not torch.equal(first[drawn], other[drawn])
    assert torch.equal(first[loaded], other[loaded])


def test_loss_trains_the_heads_and_includes_cdcr():
    config, sd = _case("wti")
    model = DRLModel(config)
    load_state_dict_strict(model, convert_original_state_dict(sd, config))
    out = load_file(str(CASES / "wti" / "outputs.safetensors"))
    inputs = load_file(str(CASES / "wti" / "inputs.safetensors"))
    text, video = out["text_feat"], out["video_feat"]
    loss = model.loss(text, video, inputs["text_mask"], inputs["video_mask"])
    assert loss.item() == pytest.approx(out["train_loss"].item(), abs=1e-5)
    loss.backward()
    assert model.text_weight_fc[0].weight.grad.abs().sum() > 0
    assert model.clip.logit_scale.grad is not None
    model.zero_grad()
    config.cdcr = 0
    without = model.loss(text, video, inputs["text_mask"], inputs["video_mask"]).item()
    assert loss.item() - without == pytest.approx(0.001 * out["train_cdcr_loss"].item(), abs=1e-5)


def test_ti_with_weighted_cdcr_fails_clearly():
    config, sd = _case("ti_seqlstm_cdcr2")
    model = DRLModel(config)
    load_state_dict_strict(model, convert_original_state_dict(sd, config))
    config.cdcr = 3
    out = load_file(str(CASES / "ti_seqlstm_cdcr2" / "outputs.safetensors"))
    mask_t = load_file(str(CASES / "ti_seqlstm_cdcr2" / "inputs.safetensors"))["text_mask"]
    mask_v = load_file(str(CASES / "ti_seqlstm_cdcr2" / "inputs.safetensors"))["video_mask"]
    with pytest.raises(ValueError, match="cdcr=3 weights rows by the wti token weights"):
        model.loss(out["text_feat"], out["video_feat"], mask_t, mask_v)


def test_bad_feature_shapes_are_named():
    config, _ = _case("dp_none_cdcr3")
    model = DRLModel(config)
    with pytest.raises(ValueError, match=r"text \(A, Nt, D\)"):
        model.similarity(torch.zeros(2, 64), torch.zeros(2, 4, 64), torch.ones(2, 8), torch.ones(2, 4))
    with pytest.raises(ValueError, match="masks must match"):
        model.similarity(torch.zeros(2, 8, 64), torch.zeros(2, 4, 64), torch.ones(2, 7), torch.ones(2, 4))
