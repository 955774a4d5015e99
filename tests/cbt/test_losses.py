"""CBT's NCE visual loss and cross-modal MI loss against their direct formulas."""

from __future__ import annotations

import math

import torch

from vtzoo.operators.cbt.losses import cross_modal_loss, nce_visual_loss, total_loss


def test_nce_visual_loss_against_the_formula():
    torch.manual_seed(0)
    features = torch.randn(2, 3, 4)
    predictions = torch.randn(2, 3, 4)
    clip_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    masked = torch.tensor([[0, 1, 0], [1, 0, 1]])  # (1, 2) is padding: not a target, not a candidate
    candidates = [features[0, 0], features[0, 1], features[0, 2], features[1, 0], features[1, 1]]
    terms = []
    for (b, t), own in (((0, 1), 1), ((1, 0), 3)):
        scores = [float(predictions[b, t] @ c) for c in candidates]
        terms.append(-(scores[own] - math.log(sum(math.exp(s) for s in scores))))
    assert abs(float(nce_visual_loss(features, predictions, clip_mask, masked)) - sum(terms) / 2) < 1e-5


def test_cross_modal_loss_is_a_softmax_over_the_batch_texts():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 0.0]])
    mi = scores.exp()
    expected = -sum(math.log(mi[i, i] / mi[i].sum()) for i in range(3)) / 3
    assert abs(float(cross_modal_loss(scores)) - float(expected)) < 1e-6


def test_total_is_the_weighted_sum():
    class C:
        bert_weight, visual_weight, cross_weight = 0.5, 2.0, 3.0

    assert float(total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0), C)) == 0.5 + 4.0 + 12.0


def test_pair_scores_score_every_video_with_every_text_of_the_batch():
    from vtzoo.operators.cbt.config import CbtConfig
    from vtzoo.operators.cbt.model import CbtModel
    from vtzoo.operators.cbt.training import pair_scores

    torch.manual_seed(0)
    model = CbtModel(CbtConfig(feature_dim=6, hidden_size=8, visual_layers=1, visual_heads=2, intermediate_size=16,
                               text_vocab_size=30, text_hidden_size=8, text_layers=1, text_heads=2,
                               text_intermediate_size=16, cross_heads=2)).eval()
    video, text = torch.randn(3, 4, 8), torch.randn(3, 5, 8)
    video_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    text_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    scores = pair_scores(model, video, video_mask, text, text_mask)
    for i in range(3):
        for j in range(3):
            alone = model.cross_scores(video[i : i + 1], video_mask[i : i + 1], text[j : j + 1], text_mask[j : j + 1])
            assert torch.allclose(scores[i, j], alone[0], atol=1e-5)
