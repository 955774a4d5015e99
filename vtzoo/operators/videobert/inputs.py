"""VideoBERT's input layout: ``[CLS] text [>] video [SEP]`` with segment and position embeddings.

Text tokens take segment 0, ``[>]`` and the visual words segment 1 (chosen: the paper shows the
layout, not the segment of ``[>]``). Text-only and video-only inputs drop the other half:
``[CLS] text [SEP]`` and ``[CLS] [>] video [SEP]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from vtzoo.operators.videobert.config import VideoBertConfig


@dataclass(frozen=True)
class SpecialTokens:
    cls: int
    sep: int
    mask: int
    pad: int

    @classmethod
    def of(cls, tokenizer) -> "SpecialTokens":
        return cls(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id or 0)


@dataclass
class Sequence_:
    ids: list[int]
    segments: list[int]
    text_positions: list[int]  # positions of text tokens (for cloze and pooling)
    video_positions: list[int]  # positions of visual words


def layout(text: Sequence[int] | None, words: Sequence[int] | None, config: VideoBertConfig,
           special: SpecialTokens) -> Sequence_:
    """One input sequence. ``text``: WordPiece ids (without specials); ``words``: visual word ids
    in ``[0, visual_vocab_size)`` (offset into the joint vocabulary here)."""
    text = list(text or [])[: config.max_text_tokens]
    words = list(words or [])[: config.max_video_tokens]
    ids, segments = [special.cls], [0]
    ids += text
    segments += [0] * len(text)
    text_positions = list(range(1, 1 + len(text)))
    video_positions: list[int] = []
    if words:
        ids.append(config.join_token_id)
        segments.append(1)
        start = len(ids)
        ids += [config.visual_offset + int(w) for w in words]
        segments += [1] * len(words)
        video_positions = list(range(start, start + len(words)))
    ids.append(special.sep)
    segments.append(1 if words else 0)
    return Sequence_(ids, segments, text_positions, video_positions)


def collate(sequences: Sequence[Sequence_], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``token_type_ids`` and ``attention_mask`` (B, L)."""
    length = max(len(s.ids) for s in sequences)
    ids = torch.full((len(sequences), length), pad, dtype=torch.long)
    segments = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq.ids)] = torch.tensor(seq.ids)
        segments[row, : len(seq.segments)] = torch.tensor(seq.segments)
        mask[row, : len(seq.ids)] = 1
    return {"input_ids": ids, "token_type_ids": segments, "attention_mask": mask}


def position_mask(sequences: Sequence[Sequence_], length: int, which: str) -> torch.Tensor:
    """(B, L) 1 at each sequence's ``text`` or ``video`` positions."""
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, seq in enumerate(sequences):
        positions = seq.text_positions if which == "text" else seq.video_positions
        out[row, positions] = 1
    return out
