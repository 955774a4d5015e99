"""DRL's interaction / regularisation / loss math, on hand-made tensors and the fixture's features."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vtzoo.operators.drl import interaction as I

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "drl"


def _unit(*xs: float) -> torch.Tensor:
    v = torch.tensor(xs, dtype=torch.float32)
    return v / v.norm()


def _one_pair():
    """1 text (2 valid tokens + 1 pad) and 1 video (2 valid frames + 1 pad), 2-d features.

    Token 0 = e1, token 1 = e2; frame 0 = -e1, frame 1 = (e1 + e2)/sqrt2 * 3 (unnormalised).
    """
    text = torch.stack([_unit(1, 0), _unit(0, 1) * 2, _unit(1, 1)]).unsqueeze(0)
    video = torch.stack([-_unit(1, 0), _unit(1, 1) * 3, _unit(0, 1)]).unsqueeze(0)
    return text, video, torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 0]])


def test_token_similarity_is_cosine_masked_by_multiplication():
    text, video, tm, vm = _one_pair()
    sim = I.token_similarity(text, video, tm, vm)[0, 0]
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[-1.0, r, 0.0], [0.0, r, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(sim, expected)


def test_ti_divides_by_valid_counts_and_max_sees_masked_zeros():
    text, video, tm, vm = _one_pair()
    sim = I.token_similarity(text, video, tm, vm)
    r = 1 / math.sqrt(2)
    # tokens' best frames: r, r -> mean r; frames' best tokens: max(-1, 0, 0 from the pad) = 0, r
    expected = (r + r / 2) / 2
    assert I.ti_logits(sim, tm, vm).item() == pytest.approx(expected, abs=1e-6)


def test_wti_weights_softmax_over_valid_positions_only():
    text, video, tm, vm = _one_pair()
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 1.0]]))
        net.bias.zero_()
    w = I.token_weights(net, text, tm)  # scores: 0, 2 (token 1 has norm 2), pad -inf
    e = math.exp(2)
    torch.testing.assert_close(w, torch.tensor([[1 / (1 + e), e / (1 + e), 0.0]]))
    sim = I.token_similarity(text, video, tm, vm)
    vw = torch.tensor([[0.25, 0.75, 0.0]])
    logits, t2v, v2t = I.wti_logits(sim, w, vw)
    r = 1 / math.sqrt(2)
    assert t2v.item() == pytest.approx(r, abs=1e-6)  # both tokens' best is r
    assert v2t.item() == pytest.approx(0.25 * 0.0 + 0.75 * r, abs=1e-6)
    assert logits.item() == pytest.approx((t2v.item() + v2t.item()) / 2, abs=1e-7)


def test_dp_uses_mask_based_end_token_and_renormalised_frame_mean():
    text = torch.tensor([[[1.0, 0.0], [0.0, 5.0], [9.0, 9.0]]])  # 2 valid tokens: EOT = index 1
    video = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [7.0, -7.0]]])
    t, v = I.dp_vectors(text, video, torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(v, _unit(1, 1).unsqueeze(0))


def test_decorrelation_penalty_hand_values():
    eye = torch.eye(3)
    assert I.decorrelation_penalty(eye, 1.0, 0.06).item() == 0.0
    c = torch.tensor([[0.5, 2.0], [-1.0, 1.0]])
    assert I.decorrelation_penalty(c, 2.0, 0.5).item() == pytest.approx(2.0 * 0.25 + 0.5 * 5.0)


def test_contrastive_cross_entropy_hand_values():
    assert I.contrastive_cross_entropy(torch.zeros(2, 2)).item() == pytest.approx(math.log(2))
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    expected = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(0.5)) / 2
    assert I.contrastive_cross_entropy(logits).item() == pytest.approx(expected)


def test_weight_network_layouts_match_original_keys():
    assert set(I.build_weight_network(8, 1).state_dict()) == {"weight", "bias"}
    assert set(I.build_weight_network(8, 2).state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert {k.split(".")[0] for k in I.build_weight_network(8, 3).state_dict()} == {"0", "2", "4"}
    with pytest.raises(ValueError, match="wti_arch"):
        I.build_weight_network(8, 4)


def test_head_math_on_fixture_features():
    """The fixture's own text/video features through the heads give its logits and cdcr."""
    out = load_file(str(CASES / "wti" / "outputs.safetensors"))
    inp = load_file(str(CASES / "wti" / "inputs.safetensors"))
    sd = {k: v.float() for k, v in load_file(str(CASES / "wti" / "original_state_dict.safetensors")).items()}
    tf, vf, tm, vm = out["text_feat"], out["video_feat"], inp["text_mask"], inp["video_mask"]
    nets = []
    for side in ("text", "video"):
        net = I.build_weight_network(tf.shape[-1], 2)
        prefix = f"{side}_weight_fc."
        net.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
        nets.append(net)
    with torch.no_grad():
        tw, vw = I.token_weights(nets[0], tf, tm), I.token_weights(nets[1], vf, vm)
    sim = I.token_similarity(tf, vf, tm, vm)
    logits, _, _ = I.wti_logits(sim, tw, vw)
    torch.testing.assert_close(logits, out["t2v_logits"], atol=1e-6, rtol=0)
    cdcr = I.cdcr_weighted_partners(sim, I.l2_normalise(tf), I.l2_normalise(vf), tm, vm, tw, vw, 1.0, 0.06)
    assert cdcr.item() == pytest.approx(out["train_cdcr_loss"].item(), abs=1e-4)
    # the quirk the fixture documents: some maxima are masked zeros, -inf masking would differ
    assert (sim.max(dim=-1).values == 0).any()


def test_cdcr_partners_need_square_batch():
    sim = torch.zeros(2, 3, 4, 5)
    with pytest.raises(ValueError, match="as many texts as videos"):
        I.cdcr_best_partners(sim, torch.randn(2, 4, 6), torch.randn(3, 5, 6), torch.ones(2, 4), torch.ones(3, 5), 1, 1)


def test_cdcr_is_finite_when_every_frame_picks_the_same_start_token():
    """From scratch, CLIP's start token (the same feature in every text: it attends to itself only)
    can be every frame's best token; its partner rows are then identical and their standardisation
    was 0 / 0 (the DRL training run's NaN at step 2). The loss and its gradients stay finite."""
    torch.manual_seed(0)
    start = I.l2_normalise(torch.randn(1, 1, 8))
    text = torch.cat([start.expand(3, 1, 8), torch.randn(3, 4, 8)], dim=1).requires_grad_()
    video = (start.expand(3, 2, 8) + 0.01 * torch.randn(3, 2, 8)).requires_grad_()  # frames near the start token
    tm, vm = torch.ones(3, 5), torch.ones(3, 2)
    weights = torch.softmax(torch.randn(3, 5), -1), torch.softmax(torch.randn(3, 2), -1)
    for weighted in (True, False):
        text.grad = video.grad = None
        t, v = I.l2_normalise(text), I.l2_normalise(video)
        sim = I.token_similarity(text, video, tm, vm)
        assert (sim.max(dim=-2).indices == 0).all()  # every frame's best token is the start token
        if weighted:
            cdcr = I.cdcr_weighted_partners(sim, t, v, tm, vm, *weights, 1.0, 0.06)
        else:
            cdcr = I.cdcr_best_partners(sim, t, v, tm, vm, 1.0, 0.06)
        cdcr.backward()
        assert torch.isfinite(cdcr) and torch.isfinite(text.grad).all() and torch.isfinite(video.grad).all()

def test_standardise_leaves_varying_channels_exact_and_zeroes_constant_ones():
    x = torch.tensor([[1.0, 0.5], [2.0, 0.5], [4.0, 0.5]])
    z = I.standardise(x)
    torch.testing.assert_close(z[:, 0], (x[:, 0] - x[:, 0].mean()) / x[:, 0].std(), atol=0, rtol=0)
    assert torch.equal(z[:, 1], torch.zeros(3))
