"""VideoBERT's three pre-training regimes and their losses.

* text cloze: BERT's masked language model on text-only inputs;
* video cloze: the same on video-only inputs, a softmax over the visual vocabulary;
* text-video: cloze on both halves of ``[CLS] text [>] video [SEP]`` plus the linguistic-visual
  alignment loss from ``[CLS]`` (negatives pair a text with another video's clips).

Masking follows BERT (the paper does not restate it, so BERT's defaults are chosen): 15 % of
the maskable positions, of which 80 % become ``[MASK]``, 10 % a random token of the same
vocabulary (a text word for text, a visual word for video) and 10 % stay. Augmentations from the
paper: neighbouring sentences concatenated at random, visual words subsampled at a random rate
(1-5). The losses are summed with equal weights by default (the paper gives none); the alignment
term can be weighted apart (``alignment_weight``), since from scratch the cloze terms drown it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


IGNORE = -100


@dataclass
class Masked:
    input_ids: torch.Tensor  # (B, L) with masks applied
    labels: torch.Tensor  # (B, L) original id at masked positions, IGNORE elsewhere


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, mask_id: int, random_low: int, random_high: int,
                generator: torch.Generator, probability: float = 0.15) -> Masked:
    """BERT masking of the ``maskable`` (B, L) positions; random replacements are drawn from
    ``[random_low, random_high)``. At least one position per row with a maskable position is masked."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & maskable.bool()
    for row in range(input_ids.shape[0]):  # every row teaches something
        if maskable[row].any() and not chosen[row].any():
            candidates = maskable[row].nonzero().squeeze(1)
            chosen[row, candidates[torch.randint(len(candidates), (1,), generator=generator)]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    draw = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (draw < 0.8)] = mask_id
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[randomised] = torch.randint(random_low, random_high, (int(randomised.sum()),), generator=generator)
    return Masked(masked, labels)


def cloze_loss(logits: torch.Tensor, labels: torch.Tensor, offset: int) -> torch.Tensor:
    """Cross-entropy over one vocabulary: ``logits`` (B, L, V) restricted to it, ``labels`` joint
    ids (``offset`` is the vocabulary's first joint id); 0 when nothing is masked."""
    keep = labels != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep].float(), labels[keep] - offset)


def alignment_loss(alignment_logits: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the ``[CLS]`` classifier; ``aligned`` (B,) bool."""
    from vtzoo.operators.videobert.model import ALIGNED

    target = torch.where(aligned.bool(), torch.full_like(aligned.long(), ALIGNED), torch.full_like(aligned.long(), 1 - ALIGNED))
    return F.cross_entropy(alignment_logits.float(), target)


def subsample_words(words: list[int], generator: torch.Generator, max_rate: int = 5) -> list[int]:
    """Keep every r-th visual word, r drawn from 1..max_rate (the paper's video augmentation)."""
    rate = int(torch.randint(1, max_rate + 1, (1,), generator=generator))
    start = int(torch.randint(rate, (1,), generator=generator))
    return words[start::rate] or words[:1]


def neighbour_span(count: int, index: int, generator: torch.Generator, max_extra: int = 2) -> tuple[int, int]:
    """The paper's text augmentation: sentence ``index`` of ``count`` joined with 0..max_extra
    following neighbours; returns the first and last sentence (inclusive)."""
    extra = int(torch.randint(0, max_extra + 1, (1,), generator=generator))
    return index, min(count - 1, index + extra)


def mask_sequence(seq, config, special, generator: torch.Generator, probability: float = 0.15) -> tuple[list[int], list[int], list[int]]:
    """BERT masking of one :class:`~vtzoo.operators.videobert.inputs.Sequence_`, text and video
    positions apart (a random replacement comes from the position's own vocabulary); returns the
    masked ids and the text and video labels (joint ids, IGNORE where nothing is predicted)."""
    ids = torch.tensor([seq.ids])
    labels = {}
    for which, positions, low, high in (("text", seq.text_positions, 0, config.text_vocab_size),
                                        ("video", seq.video_positions, config.visual_offset,
                                         config.visual_offset + config.visual_vocab_size)):
        maskable = torch.zeros_like(ids)
        maskable[0, positions] = 1
        masked = mask_tokens(ids, maskable, special.mask, low, high, generator, probability)
        ids, labels[which] = masked.input_ids, masked.labels
    return ids[0].tolist(), labels["text"][0].tolist(), labels["video"][0].tolist()


TEXT, VIDEO, TEXT_VIDEO = 0, 1, 2  # the regime of a row of a pre-training batch
REGIMES = {"text": TEXT, "video": VIDEO, "text-video": TEXT_VIDEO}


def pretraining_outputs(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's predictions on a prepared batch, read only where the losses need them.

    ``batch``: ``input_ids``, ``token_type_ids``, ``attention_mask`` (B, L); ``text_labels`` and
    ``video_labels`` (B, L) joint ids at masked positions (IGNORE elsewhere); ``regime`` (B,)
    (:data:`TEXT`, :data:`VIDEO`, :data:`TEXT_VIDEO`); ``aligned`` (B,) bool (text-video rows).
    """
    config = model.config
    hidden, pooled = model.encode(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    out: dict[str, torch.Tensor] = {}
    for name, regime in (("text", TEXT), ("video", VIDEO), ("pair_text", TEXT_VIDEO), ("pair_video", TEXT_VIDEO)):
        labels = batch["video_labels" if name.endswith("video") else "text_labels"]
        keep = (labels != IGNORE) & (batch["regime"] == regime)[:, None]
        logits = model.token_logits(hidden[keep])
        if name.endswith("video"):
            out[f"{name}_logits"] = model.visual_word_logits(logits)
            out[f"{name}_targets"] = labels[keep] - config.visual_offset
        else:
            out[f"{name}_logits"] = model.text_word_logits(logits)
            out[f"{name}_targets"] = labels[keep]
    pairs = batch["regime"] == TEXT_VIDEO
    out["alignment_logits"] = model.alignment_logits(pooled[pairs])
    out["aligned"] = batch["aligned"][pairs]
    return out


def pretraining_losses(outputs: dict[str, torch.Tensor], alignment_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Every regime's loss from :func:`pretraining_outputs`, and their sum: text cloze + video cloze
    + (text-video cloze on both halves + ``alignment_weight`` x alignment). A regime absent from
    the batch contributes nothing."""
    losses = {f"{name}_cloze": cloze_loss(outputs[f"{name}_logits"], outputs[f"{name}_targets"], 0)
              for name in ("text", "video", "pair_text", "pair_video") if outputs[f"{name}_targets"].numel()}
    if outputs["aligned"].numel():
        losses["alignment"] = alignment_loss(outputs["alignment_logits"], outputs["aligned"])
    weights = {"alignment": alignment_weight}
    losses["loss"] = (sum(weights.get(name, 1.0) * value for name, value in losses.items()) if losses
                      else outputs["alignment_logits"].sum() * 0.0)
    return losses
