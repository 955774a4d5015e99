"""MDMMT / MMT model pieces: scoring rules, position ids, release checkpoints, full-size shapes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vtzoo.operators.mdmmt.config import MdmmtConfig
from vtzoo.operators.mdmmt.golden import mdmmt_config_from_case
from vtzoo.operators.mdmmt.model import MdmmtModel, average_caption_similarities
from vtzoo.operators.mdmmt.operator import MdmmtOperator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
MDMMT_CASE = FIXTURES / "mdmmt" / "visible_3experts_missing_audio"

TINY_TEXT = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=32)
TINY_EXPERTS = [{"name": "a", "dim": 4, "idx": 1, "max_tok": 3}, {"name": "b", "dim": 6, "idx": 5, "max_tok": 2}]


def tiny(architecture: str = "mdmmt", **kw) -> MdmmtModel:
    torch.manual_seed(0)
    cfg = MdmmtConfig(architecture=architecture, experts=TINY_EXPERTS, same_dim=8, hidden_size=8, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=16, max_position_embeddings=8, text_bert=TINY_TEXT, **kw)
    return MdmmtModel(cfg).eval()


def _unit(*shape):
    return torch.nn.functional.normalize(torch.randn(*shape), dim=-1)


def test_mdmmt_similarity_is_weighted_dot_product_missing_experts_included():
    model = tiny()
    text, video = _unit(3, 2, 8), _unit(4, 2, 8)
    weights = torch.softmax(torch.randn(3, 2), dim=1)
    available = torch.tensor([[1.0, 0.0]] * 4)  # expert b missing everywhere: MDMMT still scores it
    expected = torch.zeros(3, 4)
    for i in range(3):
        for j in range(4):
            expected[i, j] = sum(weights[i, m] * text[i, m] @ video[j, m] for m in range(2))
    assert torch.allclose(model.similarity(text, weights, video, available), expected, atol=1e-6)


def test_mmt_similarity_renormalises_weights_of_present_experts():
    model = tiny("mmt", keep_missing_modalities=False)
    text, video = _unit(2, 2, 8), _unit(2, 2, 8)
    weights = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    available = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    sims = model.similarity(text, weights, video, available)
    dots = torch.einsum("imd,jmd->ijm", text, video)
    # video 1 lacks expert b: all weight goes to expert a
    assert torch.allclose(sims[:, 1], dots[:, 1, 0], atol=1e-6)
    assert torch.allclose(sims[:, 0], (weights * dots[:, 0]).sum(-1), atol=1e-6)
    model.config.keep_missing_modalities = True
    assert torch.allclose(model.similarity(text, weights, video, available), (weights[:, None] * dots).sum(-1), atol=1e-6)
    per_caption = torch.arange(8.0).view(4, 2)
    assert average_caption_similarities(per_caption, 2).tolist() == [[1.0, 2.0], [5.0, 6.0]]


def test_position_ids_are_clamped_then_truncated_without_touching_inputs():
    model = tiny()
    features = {"a": torch.randn(1, 3, 4), "b": torch.randn(1, 2, 6)}
    times = {"a": torch.tensor([[2.5, 9.7, 0.0]]), "b": torch.tensor([[-3.0, 7.99]])}
    kept = {k: v.clone() for k, v in times.items()}
    ind = {"a": torch.tensor([[1.0, 1.0, 0.0]]), "b": torch.tensor([[1.0, 1.0]])}
    tok = model.video_tokens(features, times, ind)
    # [CLS], [AGG]a, a0, a1, a2, [AGG]b, b0, b1
    assert tok.position_ids.tolist() == [[0, 0, 2, 7, 0, 0, 0, 7]]
    assert tok.token_type_ids.tolist() == [[0, 1, 1, 1, 1, 5, 5, 5]]
    assert tok.attention_mask.tolist() == [[1, 1, 1, 1, 0, 1, 1, 1]]
    assert all(torch.equal(times[k], kept[k]) for k in times)  # the original clamps in place; vtzoo does not


def test_wrong_feature_size_names_the_expert():
    model = tiny()
    features = {"a": torch.randn(1, 3, 5), "b": torch.randn(1, 2, 6)}
    zeros = {"a": torch.zeros(1, 3), "b": torch.zeros(1, 2)}
    with pytest.raises(ValueError, match="expert 'a'.*expected 4"):
        model.encode_video(features, zeros, zeros)


@pytest.mark.parametrize("with_position_ids", [True, False])
def test_release_format_converts_on_load(tmp_path, with_position_ids):
    """mdmmt_3mod.pth layout: {vid_state_dict, txt_state_dict}, plain keys, loaded with weights_only."""
    case_cfg = json.loads((MDMMT_CASE / "config.json").read_text())
    state = load_file(str(MDMMT_CASE / "original_state_dict.safetensors"))
    if not with_position_ids:
        state.pop("txt_bert.embeddings.position_ids")
    vid = {k: v for k, v in state.items() if k.startswith(("vid_bert.", "video_dim_reduce"))}
    txt = {k: v for k, v in state.items() if k not in vid}
    path = tmp_path / "mdmmt_3mod.pth"
    torch.save({"vid_state_dict": vid, "txt_state_dict": txt}, path)
    cfg = mdmmt_config_from_case(case_cfg)
    op = MdmmtOperator.build(None, weights=str(path), config=dataclasses.asdict(cfg),
                             options=MdmmtOperator.options_class(precision="fp32"))
    inputs = load_file(str(MDMMT_CASE / "inputs.safetensors"))
    outputs = load_file(str(MDMMT_CASE / "outputs.safetensors"))
    names = cfg.expert_names
    with torch.no_grad():
        out = op.model.encode_video(*({n: inputs[f"{k}.{n}"] for n in names} for k in ("features", "features_t", "features_ind")))
    assert torch.allclose(out.expert_embeddings.flatten(1), outputs["video_embd"], atol=1e-5)


def _bert_layer_params(hidden: int, inter: int) -> int:
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    return attention + hidden * inter + inter + inter * hidden + hidden + 2 * hidden


def test_full_size_mdmmt_matches_the_original_layout():
    with torch.device("meta"):
        model = MdmmtModel(MdmmtConfig())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # bert-base-cased is 108,310,272 parameters with its pooler (768*768 + 768), which MDMMT never uses
    assert count(model.txt_bert) == 108_310_272 - (768 * 768 + 768)
    # the original video transformer: position + type embeddings, LayerNorm, 9 post-LN layers (pooler dropped)
    video = 32 * 512 + 19 * 512 + 2 * 512 + 9 * _bert_layer_params(512, 3072)
    assert count(model.vid_bert) == video
    reduce = sum(d * 512 + 512 for d in (2048, 512, 128))
    assert count(model.video_dim_reduce) == reduce
    gates = 3 * ((768 * 512 + 512) + (512 * 512 + 512) + 2 * 512) + 3 * (768 + 1)
    assert count(model.text_gu) + count(model.moe_fc_txt) == gates
    assert model.config.embedding_dim == 1536 and model.config.video_tokens == 94


def test_full_size_mmt_msrvtt_layout():
    card_experts = {"face": 512, "ocr": 300, "rgb": 2048, "s3d": 1024, "scene": 2208, "speech": 300, "vggish": 128}
    experts = [{"name": n, "dim": d, "idx": i, "max_tok": 30} for i, (n, d) in enumerate(card_experts.items(), start=1)]
    with torch.device("meta"):
        model = MdmmtModel(MdmmtConfig(architecture="mmt", experts=experts, num_hidden_layers=4, num_attention_heads=4))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.vid_bert) == 32 * 512 + 19 * 512 + 2 * 512 + 4 * _bert_layer_params(512, 3072)
    assert count(model.video_dim_reduce) == sum(d * 512 + 512 for d in card_experts.values())
    assert model.config.embedding_dim == 7 * 512
