"""VideoBERT's three pre-training regimes and their losses.

* text cloze: BERT's masked language model on text-only inputs;
* video cloze: the same on video-only inputs, a softmax over the visual vocabulary;
* text-video: cloze on both halves of ``[CLS] text [>] video [SEP]`` plus the linguistic-visual
  alignment loss from ``[CLS]`` (negatives pair a text with another video's clips).

Masking follows BERT (the paper does not restate it, so BERT's defaults are chosen): 15 % of
the maskable positions, of which 80 % become ``[MASK]``, 10 % a random token of the same
vocabulary (a text word for text, a visual word for video) and 10 % stay. Augmentations from the
paper: neighbouring sentences concatenated at random, visual words subsampled at a random rate
(1-5). The three losses are summed with equal weights (the paper gives none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vtzoo.operators.videobert.config import VideoBertConfig

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


def concat_neighbours(sentences: list[list[int]], index: int, generator: torch.Generator, max_extra: int = 2) -> tuple[list[int], int, int]:
    """Sentence ``index`` joined with 0..max_extra following neighbours (the paper's text
    augmentation); returns the tokens and the first and last sentence used."""
    extra = int(torch.randint(0, max_extra + 1, (1,), generator=generator))
    last = min(len(sentences) - 1, index + extra)
    tokens = [token for sentence in sentences[index : last + 1] for token in sentence]
    return tokens, index, last


def pretraining_losses(model, batch: dict[str, torch.Tensor], config: VideoBertConfig) -> dict[str, torch.Tensor]:
    """Every regime's loss on a prepared batch (see :func:`vtzoo.operators.videobert.training`)."""
    out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    losses = {
        "text_cloze": cloze_loss(model.text_word_logits(out.token_logits), batch["text_labels"], 0),
        "video_cloze": cloze_loss(model.visual_word_logits(out.token_logits), batch["video_labels"], config.visual_offset),
    }
    if "aligned" in batch:
        pairs = batch["pair"].bool()  # alignment only on text-video inputs
        if pairs.any():
            losses["alignment"] = alignment_loss(out.alignment_logits[pairs], batch["aligned"][pairs])
    losses["total"] = sum(losses.values())
    return losses
