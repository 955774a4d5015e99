"""CBT's losses: the contrastive (NCE) masked visual loss, the cross-modal MI loss, and the total.

``L_visual = -sum_t log exp(e_t . ê_t) / sum_{j in {t} u Neg(t)} exp(e_j . ê_t)``: each masked
clip's prediction ``ê_t`` must pick its own features ``e_t`` among the clips of the minibatch
(every real clip of every video in the batch is a candidate).
``L_cross = -log MI(x, y) / (MI(x, y) + sum_{y'} MI(x, y'))`` with ``MI = exp(s)``: a softmax over
the texts of the batch for each video. ``L = w_bert L_bert + w_visual L_visual + w_cross L_cross``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nce_visual_loss(features: torch.Tensor, predictions: torch.Tensor, clip_mask: torch.Tensor,
                    masked: torch.Tensor) -> torch.Tensor:
    """``features``/``predictions`` (B, T, D); ``clip_mask`` real clips, ``masked`` the predicted ones."""
    candidates = features[clip_mask.bool()].float()  # (M, D): every real clip of the batch
    index = torch.cumsum(clip_mask.flatten().long(), 0).view_as(clip_mask) - 1  # a clip's row in candidates
    chosen = masked.bool() & clip_mask.bool()
    if not chosen.any():
        return predictions.sum() * 0.0
    logits = predictions[chosen].float() @ candidates.T  # (K, M)
    return F.cross_entropy(logits, index[chosen])


def cross_modal_loss(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` (B, B): s(video i, text j). Each video's own text against the batch's others."""
    return F.cross_entropy(scores.float(), torch.arange(scores.shape[0], device=scores.device))


def total_loss(bert: torch.Tensor, visual: torch.Tensor, cross: torch.Tensor, config) -> torch.Tensor:
    return config.bert_weight * bert + config.visual_weight * visual + config.cross_weight * cross
