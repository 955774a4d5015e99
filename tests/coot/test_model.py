"""COOT network pieces against hand-computed values, and the full-size configurations' sizes."""

from __future__ import annotations

import math

import pytest
import torch

from vtzoo.operators.coot import CootConfig, CootModel
from vtzoo.operators.coot.config import CootNetworkConfig, MLPConfig, PoolerConfig
from vtzoo.operators.coot.layers import MLP, AtnPool, AvgSpecialPool, CootLayerNorm, sincos_table

# State-dict numbers of the ORIGINAL code's four networks for the paper configs, counted by
# building them with the original TransformerLegacy (scratch run outside the repo, configs
# config/retrieval/paper2020/*.yaml after same_as resolution, feature dims 512 / 2048 / 4096 video,
# 1536 text). Its parameters() count 2 more (the two pools' constant genpool_one, a buffer here).
ORIGINAL_STATE_NUMBERS = {512: 8_547_330, 2048: 9_140_226, 4096: 9_930_754}
ORIGINAL_PER_NETWORK_512 = {"net_video_local": 1_914_113, "net_video_global": 2_161_920,
                            "net_text_local": 2_309_377, "net_text_global": 2_161_920}  # fmt: skip


@pytest.mark.parametrize("video_dim", sorted(ORIGINAL_STATE_NUMBERS))
def test_full_size_state_matches_original(video_dim):
    model = CootModel(CootConfig(video_feature_dim=video_dim))
    assert sum(v.numel() for v in model.state_dict().values()) == ORIGINAL_STATE_NUMBERS[video_dim]
    assert sum(p.numel() for p in model.parameters()) == ORIGINAL_STATE_NUMBERS[video_dim] - 1_536_000 - 2
    assert (model.clip_dim, model.video_dim, model.sentence_dim, model.paragraph_dim) == (384, 768, 384, 768)


def test_full_size_per_network():
    model = CootModel(CootConfig())
    for name, expected in ORIGINAL_PER_NETWORK_512.items():
        assert sum(v.numel() for v in getattr(model, name).state_dict().values()) == expected, name


def test_cards_build_the_paper_architecture():
    from vtzoo.registry.cards import get_card
    from vtzoo.registry.weights import config_from_dict

    for variant, dim in (("youcook2-s3d", 512), ("activitynet", 2048), ("youcook2-2d3d", 4096)):
        config = config_from_dict(CootConfig, get_card(f"coot/{variant}").config, variant)
        assert config.video_feature_dim == dim
        assert sum(v.numel() for v in CootModel(config).state_dict().values()) == ORIGINAL_STATE_NUMBERS[dim]


def test_layernorm_uses_unbiased_std_plus_eps():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    mean, std = 3.0, math.sqrt(((1 - 3) ** 2 + 1 + 0 + 9) / 3)  # unbiased: N - 1
    expected = torch.tensor([[(v - mean) / (std + 1e-6) for v in (1.0, 2.0, 3.0, 6.0)]])
    assert torch.allclose(CootLayerNorm(4)(x), expected, atol=1e-6)


def test_sincos_table_uses_full_channel_index():
    pe = sincos_table(5, 4)
    # channel c uses 10000 ** (2 c / D) for sin (even c) and cos (odd c)
    assert pe[3, 0] == pytest.approx(math.sin(3))
    assert pe[3, 1] == pytest.approx(math.cos(3 / 10000 ** (2 / 4)), abs=1e-6)
    assert pe[3, 2] == pytest.approx(math.sin(3 / 10000 ** (4 / 4)), abs=1e-6)
    assert pe[3, 3] == pytest.approx(math.cos(3 / 10000 ** (6 / 4)), abs=1e-6)


def test_avg_special_counts_padding_in_the_sum():
    x = torch.tensor([[[1.0], [3.0], [5.0]]])  # the third step is padding
    mask = torch.tensor([[False, False, True]])
    assert AvgSpecialPool()(x, mask, torch.tensor([2])).item() == pytest.approx(4.5)  # (1 + 3 + 5) / 2


def test_atn_pool_weights_each_channel_over_real_steps_only():
    pool = AtnPool(2, PoolerConfig(hidden_dim=2, num_heads=1, dropout=0.0, activation="none"))
    gen = pool.pools[0]
    with torch.no_grad():
        gen.genpool_w1_head.copy_(torch.eye(2).unsqueeze(0))
        gen.genpool_w2_head.copy_(torch.eye(2).unsqueeze(0))
    x = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[False, False, True]])
    # logits = x itself: channel 0 over steps (0, 1) -> weights softmax(0, 1) -> 0 w0 + 1 w1;
    # channel 1 over steps (1, 0) -> weights softmax(1, 0) = (w1, w0) -> 1 w1 + 0 w0
    w = torch.softmax(torch.tensor([0.0, 1.0]), 0)
    expected = torch.tensor([[w[1].item(), w[1].item()]])
    assert torch.allclose(pool(x, mask, torch.tensor([2])), expected, atol=1e-6)


def test_atn_pool_with_several_layers_is_refused():
    with pytest.raises(ValueError, match="num_layers=2"):
        AtnPool(8, PoolerConfig(hidden_dim=8, num_heads=2, num_layers=2))


def test_multi_layer_mlp_keeps_the_original_index_layout():
    mlp = MLP(6, MLPConfig(output_dim=4, num_layers=3, hidden_dim=5, activation_middle="relu", dropout_middle=0.1))
    # Linear, Dropout, norm(Identity), act, Linear, Dropout, norm, act, Linear
    assert sorted(mlp.state_dict()) == ["mlp.0.bias", "mlp.0.weight", "mlp.4.bias", "mlp.4.weight", "mlp.8.bias",
                                        "mlp.8.weight"]  # fmt: skip


def test_global_net_needs_context_and_matching_width():
    from vtzoo.operators.coot import CootInputError, CootNetwork

    with pytest.raises(ValueError, match="hidden_dim"):
        CootNetwork(CootNetworkConfig(use_input_fc=False), 8)  # 8-d input, 384-d transformer
    model = CootModel(CootConfig(hidden_dim=8, num_heads=2, video_feature_dim=8, text_feature_dim=8)).eval()
    with pytest.raises(CootInputError, match="context"):
        model.net_video_global(torch.zeros(1, 2, 8), torch.zeros(1, 2, dtype=torch.bool), torch.tensor([2]))
