"""MoViNet training: cross-entropy with label smoothing on the motion (or action) labels.

Base models see the whole clip. Stream (causal) models are trained clip by clip, as the PyTorch
port fine-tunes them: the clip is cut into ``n_clips`` pieces fed one after the other through the
stream state (a fresh state per video), the loss of each piece's logits divided by ``n_clips``;
the state is detached between pieces (the gradient of a piece stays in it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from vtzoo.training.family import CLASSIFICATION, TrainingFamily


@dataclass
class MovinetSettings:
    label_smoothing: float = 0.1
    n_clips: int = 1  # stream models: pieces per clip (frames must divide evenly)


class MovinetTraining(TrainingFamily):
    task = CLASSIFICATION
    cross_batch = False
    Settings = MovinetSettings

    def model_config(self, config: dict[str, Any], labels) -> dict[str, Any]:
        return {**config, "num_classes": len(labels)}

    def load(self, op, sample, settings: MovinetSettings, train, rng) -> dict[str, Any]:
        from vtzoo.training.video import load_item

        # the operator's sampling and crop (the card's, or the ``preprocessing`` option's)
        frames = load_item(op, sample.item).frames
        wanted = op.video_input.frames or frames.shape[0]
        if frames.shape[0] < wanted:  # a short video: repeat its last frame, so clips stack
            frames = torch.cat([frames, frames[-1:].expand(wanted - frames.shape[0], -1, -1, -1)])
        return {"video": frames.permute(1, 0, 2, 3).contiguous(), "label": sample.item.label}

    def encode(self, op, batch, settings: MovinetSettings) -> dict[str, torch.Tensor]:
        model, video = op.model, batch["video"].to(op.device)
        if not model.config.causal or settings.n_clips == 1:
            return {"logits": model(video)[None], "target": batch["target"]}
        if video.shape[2] % settings.n_clips:
            raise ValueError(f"{video.shape[2]} frames do not split into n_clips={settings.n_clips} equal pieces")
        state = model.init_state(video.shape[0], video.shape[3], video.shape[4])
        logits = []
        for piece in video.chunk(settings.n_clips, dim=2):
            out, _, state = model.step(piece, state)
            state = replace(state, tensors={k: v.detach() for k, v in state.tensors.items()})
            logits.append(out)
        return {"logits": torch.stack(logits), "target": batch["target"]}

    def loss(self, op, encoded, settings: MovinetSettings) -> torch.Tensor:
        logits = encoded["logits"].float()  # (pieces, B, classes)
        target = encoded["target"]
        per_piece = [torch.nn.functional.cross_entropy(l, target, label_smoothing=settings.label_smoothing)
                     for l in logits]
        return torch.stack(per_piece).mean()

    def predict(self, op, batch, labels) -> list[list[int]]:
        # the operator names the classes of a model with other than 600 outputs class_<index>
        ranked = op.classify(batch["video"], top_k=len(labels))
        return [[int(name.rsplit("_", 1)[1]) for name, _ in row] for row in ranked]


FAMILY = MovinetTraining()
