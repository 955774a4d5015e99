"""What the pixel-level families share: decoding through the operator's input spec, CLIP's loss."""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily


def symmetric_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(CE over rows + CE over columns) / 2 for a square matrix whose diagonal holds the pairs."""
    target = torch.arange(logits.shape[0], device=logits.device)
    logits = logits.float()
    return (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def load_item(op: Any, item: Any, spec: Any = None) -> Any:
    """The item's video (or its ``start``-``end`` window) decoded with ``spec`` (default: the
    operator's own input spec, so training sees what inference sees)."""
    window = {"start": item.start, "end": item.end}
    if spec is None:
        return op.load_clip(str(item.path), **window)
    return spec.load(str(item.path), **window)


class CLIPFrameFamily(TrainingFamily):
    """CLIP-tower families (CLIP4Clip, DRL): the operator's frames (1 fps, at most ``max_frames``,
    at the model's resolution); the operator embeds the decoded clips at evaluation."""

    def load(self, op, sample, settings, train, rng) -> dict[str, Any]:
        clip = load_item(op, sample.item)
        return {"frames": clip.frames, "mask": clip.mask, "clip": clip, "caption": pick_caption(sample, rng)}

    def video_input(self, op, batch) -> Any:
        return batch["clip"]
