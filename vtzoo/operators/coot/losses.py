"""COOT's training losses, for fine-tuning: the contrastive (alignment + clustering) losses and the
cross-modal cycle-consistency loss, with the original's constants.

* :class:`ContrastiveLoss`: hinge loss with margin on dot products (callers L2-normalise), both
  directions, diagonal cleared, summed and divided by ``n_visual * n_text``.
* :func:`contrastive_total`: the trainer's weighted sum over video-paragraph, clip-sentence and
  context pairs (alignment, and clustering = the same loss within one modality).
* :class:`CycleConsistencyLoss`: clip -> soft nearest sentence -> soft nearest clip, the distance
  between the soft index and the true index (and the same from sentences).
* :class:`CootLoss`: the total the original trains on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtzoo.operators.coot.layers import MASK_VALUE


class ContrastiveLoss(nn.Module):
    """``mean`` of ``[margin + s(v, t') - s(v, t)]_+`` and ``[margin + s(v', t) - s(v, t)]_+`` (dot products)."""

    def __init__(self, margin: float = 0.2, max_violation: bool = False, normalize_by_size: bool = True):
        super().__init__()
        self.margin, self.max_violation, self.normalize_by_size = margin, max_violation, normalize_by_size

    def forward(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        scores = visual @ text.t()
        diagonal = scores.diag().view(visual.shape[0], 1)
        cost_text = (self.margin + scores - diagonal).clamp(min=0)  # each row against its diagonal
        cost_visual = (self.margin + scores - diagonal.t()).clamp(min=0)  # each column against its diagonal
        eye = torch.eye(scores.shape[0], scores.shape[1], dtype=torch.bool, device=scores.device)
        cost_text = cost_text.masked_fill(eye, 0)
        cost_visual = cost_visual.masked_fill(eye, 0)
        if self.max_violation:
            cost_text, cost_visual = cost_text.max(1)[0], cost_visual.max(0)[0]
        total = cost_text.sum() + cost_visual.sum()
        return total / (visual.shape[0] * text.shape[0]) if self.normalize_by_size else total


@dataclass
class ContrastiveWeights:
    high: float = 1.0
    high_internal: float = 1.0
    low: float = 1.0
    low_internal: float = 1.0
    context: float = 1.0
    context_internal: float = 0.0


def contrastive_total(
    loss: ContrastiveLoss,
    video: torch.Tensor,
    paragraph: torch.Tensor,
    clip: torch.Tensor,
    sentence: torch.Tensor,
    video_context: torch.Tensor,
    paragraph_context: torch.Tensor,
    weights: ContrastiveWeights = ContrastiveWeights(),
) -> torch.Tensor:
    """The trainer's total: embeddings are ``F.normalize``-d (eps 1e-12) first.

    Quirk kept: the context clustering term is weighted by ``low_internal`` (the original
    multiplies by the wrong weight; it only matters when ``context_internal != 0``).
    """
    v, p, c, s = F.normalize(video), F.normalize(paragraph), F.normalize(clip), F.normalize(sentence)
    vc, pc = F.normalize(video_context), F.normalize(paragraph_context)

    def cluster(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (loss(a, a) + loss(b, b)) / 2

    total = torch.zeros((), device=video.device)
    if weights.high != 0:
        total = total + weights.high * loss(v, p)
    if weights.low != 0:
        total = total + weights.low * loss(c, s)
    if weights.context != 0:
        total = total + weights.context * loss(vc, pc)
    if weights.high_internal != 0:
        total = total + weights.high_internal * cluster(v, p)
    if weights.low_internal != 0:
        total = total + weights.low_internal * cluster(c, s)
    if weights.context_internal != 0:
        total = total + weights.low_internal * cluster(vc, pc)
    return total


@dataclass
class SoftNeighbour:
    soft_nn: torch.Tensor  # (B, Ls, D) soft nearest neighbour of each source row among the targets
    weights: torch.Tensor  # (B, Ls, Lt) softmax over targets
    proximity: torch.Tensor  # (B, Ls, Lt) negative mean squared distance, masked pairs = -32752


@dataclass
class CycleConsistencyOutput:
    clip_clip: torch.Tensor  # scalar: clip -> sentence -> clip
    sent_sent: torch.Tensor  # scalar: sentence -> clip -> sentence
    clip_sent: torch.Tensor | None  # half cycles (compute_half_cycles=True)
    sent_clip: torch.Tensor | None
    clip_clip_per_position: torch.Tensor  # (B, L) squared index distance, 0 at padding
    sent_sent_per_position: torch.Tensor
    sample_idx_clip: torch.Tensor | None  # (B,) positions drawn when num_samples=1
    sample_idx_sent: torch.Tensor | None
    clip_to_sent: SoftNeighbour | None = None
    clip_cycle: SoftNeighbour | None = None
    sent_to_clip: SoftNeighbour | None = None
    sent_cycle: SoftNeighbour | None = None


class CycleConsistencyLoss(nn.Module):
    """Cross-modal cycle consistency on clip/sentence sequences of the same videos.

    Inputs are the model's padded clip / sentence embeddings (B, L, D) with masks (B, L), True =
    padding, and lengths (B,). Proximity = minus the MEAN squared difference over the feature dim
    (softmax temperature 1); the loss at position i is ``(sum_k beta_ik * k - i)^2``.
    ``num_samples=-1`` averages over every valid position (per sequence, then over the batch);
    ``num_samples=1`` (the trainer's default) draws one valid position per sequence with
    ``torch.multinomial`` (clip sequences first, then sentence sequences) unless ``sample_idx_*``
    are given.
    """

    def __init__(self, num_samples: int = 1, compute_half_cycles: bool = False):
        super().__init__()
        if num_samples not in (-1, 1):
            raise ValueError("num_samples must be -1 (all positions) or 1 (one drawn per sequence)")
        self.num_samples, self.compute_half_cycles = num_samples, compute_half_cycles

    @staticmethod
    def soft_nearest(source: torch.Tensor, source_valid: torch.Tensor, target: torch.Tensor,
                     target_valid: torch.Tensor) -> SoftNeighbour:  # fmt: skip
        proximity = -((source.unsqueeze(2) - target.unsqueeze(1)) ** 2).mean(dim=-1)
        pair_valid = source_valid.unsqueeze(2) & target_valid.unsqueeze(1)
        proximity = proximity.masked_fill(~pair_valid, -MASK_VALUE)
        weights = torch.softmax(proximity, dim=-1)
        soft_nn = (target.unsqueeze(1) * weights.unsqueeze(3)).sum(dim=2)
        return SoftNeighbour(soft_nn, weights, proximity)

    @staticmethod
    def index_loss(weights: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, L, L) softmax weights -> (B, L) squared distance of the soft index to the true one."""
        positions = torch.arange(valid.shape[1], device=weights.device)
        soft_index = (positions.view(1, 1, -1) * weights).sum(dim=-1)
        loss = (soft_index - positions.view(1, -1)) ** 2
        return loss.masked_fill(~valid, 0)

    def _reduce(self, per_position: torch.Tensor, valid: torch.Tensor, lengths: torch.Tensor,
                sample_idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        if self.num_samples == -1:
            return (per_position.sum(dim=-1) / lengths).mean(dim=-1), None
        if sample_idx is None:
            sample_idx = torch.stack([torch.multinomial(row.float(), 1)[0] for row in valid])
        picked = per_position.gather(1, sample_idx.view(-1, 1).to(per_position.device)).squeeze(1)
        return picked.mean(), sample_idx

    def forward(
        self,
        clip_emb: torch.Tensor,
        clip_mask: torch.Tensor,
        clip_lens: torch.Tensor,
        sent_emb: torch.Tensor,
        sent_mask: torch.Tensor,
        sent_lens: torch.Tensor,
        sample_idx_clip: torch.Tensor | None = None,
        sample_idx_sent: torch.Tensor | None = None,
    ) -> CycleConsistencyOutput:
        clip_valid, sent_valid = ~clip_mask, ~sent_mask
        # the original's order, which is also the order of the random draws (num_samples=1):
        # clips -> sentences [half cycle], -> clips [full cycle]; then the same from sentences
        clip_to_sent = self.soft_nearest(clip_emb, clip_valid, sent_emb, sent_valid)
        clip_sent = sent_clip = None
        if self.compute_half_cycles:
            half = self.index_loss(clip_to_sent.weights, clip_valid)
            clip_sent, _ = self._reduce(half, clip_valid, clip_lens, None)
        clip_cycle = self.soft_nearest(clip_to_sent.soft_nn, clip_valid, clip_emb, clip_valid)
        clip_per_pos = self.index_loss(clip_cycle.weights, clip_valid)
        clip_clip, idx_clip = self._reduce(clip_per_pos, clip_valid, clip_lens, sample_idx_clip)
        sent_to_clip = self.soft_nearest(sent_emb, sent_valid, clip_emb, clip_valid)
        if self.compute_half_cycles:
            half = self.index_loss(sent_to_clip.weights, sent_valid)
            sent_clip, _ = self._reduce(half, sent_valid, sent_lens, None)
        sent_cycle = self.soft_nearest(sent_to_clip.soft_nn, sent_valid, sent_emb, sent_valid)
        sent_per_pos = self.index_loss(sent_cycle.weights, sent_valid)
        sent_sent, idx_sent = self._reduce(sent_per_pos, sent_valid, sent_lens, sample_idx_sent)
        return CycleConsistencyOutput(clip_clip, sent_sent, clip_sent, sent_clip, clip_per_pos, sent_per_pos,
                                      idx_clip, idx_sent, clip_to_sent, clip_cycle, sent_to_clip,
                                      sent_cycle)  # fmt: skip


class CootLoss(nn.Module):
    """The original's training objective: weighted contrastive losses + ``loss_cycle_cons`` * (clip
    cycle + sentence cycle), on the outputs of :meth:`CootModel.encode_video` / ``encode_text``."""

    def __init__(self, margin: float = 0.2, weights: ContrastiveWeights = ContrastiveWeights(),
                 cycle_weight: float = 0.001, num_samples: int = 1):  # fmt: skip
        super().__init__()
        self.contrastive = ContrastiveLoss(margin)
        self.weights = weights
        self.cycle_weight = cycle_weight
        self.cycle = CycleConsistencyLoss(num_samples=num_samples)

    @classmethod
    def from_config(cls, config, num_samples: int = 1) -> "CootLoss":
        weights = ContrastiveWeights(config.weight_high, config.weight_high_internal, config.weight_low,
                                     config.weight_low_internal, config.weight_context,
                                     config.weight_context_internal)  # fmt: skip
        return cls(config.margin, weights, config.loss_cycle_cons, num_samples)

    def forward(self, video, text) -> dict[str, torch.Tensor]:
        contrastive = contrastive_total(self.contrastive, video.high, text.high, video.low, text.low, video.context,
                                        text.context, self.weights)  # fmt: skip
        total = contrastive
        out = {"contrastive": contrastive}
        if self.cycle_weight != 0:
            cc = self.cycle(video.low_padded, video.low_mask, video.low_lengths, text.low_padded, text.low_mask,
                            text.low_lengths)  # fmt: skip
            out["cycle_consistency"] = self.cycle_weight * (cc.clip_clip + cc.sent_sent)
            total = total + out["cycle_consistency"]
        out["total"] = total
        return out
