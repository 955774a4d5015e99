"""Decoding helpers the pixel-level families share."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily


def card_sampling(op: Any, frames: int, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``load_video`` sampling arguments of the operator's card, with ``frames`` frames at most."""
    from vtzoo.video import sampling_from_card

    prep = {**(defaults or {}), **(dict(op.card.preprocessing) if op.card is not None else {}), "frames": frames}
    return sampling_from_card(prep)


def load_item(item: Any, preprocess: Any, sampling: Mapping[str, Any]) -> Any:
    """The item's video (or its ``start``-``end`` window) as a :class:`~vtzoo.video.VideoClip`."""
    from vtzoo.video import load_video

    window = {k: v for k, v in (("start", item.start), ("end", item.end)) if v is not None}
    return load_video(item.path, preprocess=preprocess, **sampling, **window)


def symmetric_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(CE over rows + CE over columns) / 2 for a square matrix whose diagonal holds the pairs."""
    target = torch.arange(logits.shape[0], device=logits.device)
    logits = logits.float()
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


class CLIPFrameFamily(TrainingFamily):
    """CLIP-tower families (CLIP4Clip, DRL): frames sampled as the card says (1 fps by default, at most
    ``max_frames``), preprocessed at the model's resolution; the operator embeds the decoded clips."""

    def load(self, op, sample, settings, train, rng) -> dict[str, Any]:
        clip = load_item(sample.item, op.preprocess(), card_sampling(op, op.config.max_frames, {"fps": 1}))
        return {"frames": clip.frames, "mask": clip.mask, "clip": clip, "caption": pick_caption(sample, rng)}

    def video_input(self, op, batch) -> Any:
        return batch["clip"]
