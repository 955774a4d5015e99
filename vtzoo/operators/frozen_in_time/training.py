"""Frozen in Time training: NormSoftmax over cosine similarities, with the image-then-video curriculum.

The loss (``model/loss.py`` of the original, ``NormSoftmaxLoss``, temperature 0.05): the
log-softmax of ``cos / T`` over the videos of each caption and over the captions of each video;
minus the mean of the matched pairs' log-probabilities, summed over the two directions.

The curriculum: the original first trains on single frames (images, ``num_frames: 1``), then
loads that checkpoint and raises the frame count (4); the space-time model takes either, since
its temporal embedding is sliced to the clip. ``family.curriculum`` lists the stages, each
``{epochs: N, frames: F}``; the last stage runs to the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily
from vtzoo.training.video import load_item


@dataclass
class Stage:
    frames: int
    epochs: int | None = None  # None: until the end of the run


@dataclass
class FrozenSettings:
    temperature: float = 0.05
    curriculum: list[Stage] = field(default_factory=lambda: [Stage(frames=4)])
    frames: int = 4  # the frames of the stage in force (set from the curriculum per epoch)


class FrozenInTimeTraining(TrainingFamily):
    Settings = FrozenSettings

    def epoch_settings(self, settings: FrozenSettings, epoch: int) -> FrozenSettings:
        start = 0
        for stage in settings.curriculum:
            if stage.epochs is None or epoch < start + stage.epochs:
                return replace(settings, frames=stage.frames)
            start += stage.epochs
        return replace(settings, frames=settings.curriculum[-1].frames)

    def load(self, op, sample, settings: FrozenSettings, train, rng) -> dict[str, Any]:
        # the operator's sampling (segment middles, padded short videos), with the stage's frame count
        spec = op.video_input.replace(num_frames=min(settings.frames, op.num_frames), pad=op.pads_short_videos)
        return {"video": load_item(op, sample.item, spec).frames, "caption": pick_caption(sample, rng)}

    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        ids, mask = op.tokenize(batch["caption"])
        return {"text": op.model.encode_text(ids.to(op.device), mask.to(op.device)),
                "video": op.model.encode_video(batch["video"].to(op.device))}

    def loss(self, op, encoded, settings: FrozenSettings) -> torch.Tensor:
        logits = op.model.similarity(encoded["text"].float(), encoded["video"].float()) / settings.temperature
        t2v = torch.log_softmax(logits, dim=1).diagonal().mean()
        v2t = torch.log_softmax(logits.T, dim=1).diagonal().mean()
        return -t2v - v2t

    def video_input(self, op, batch) -> Any:
        return batch["video"]


FAMILY = FrozenInTimeTraining()
