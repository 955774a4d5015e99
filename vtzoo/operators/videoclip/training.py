"""VideoCLIP training: contrastive loss on raw dot products, overlapped positives, retrieval-augmented batches.

* Loss (MMPT ``MMContraLoss``): cross-entropy of every video against the batch's texts plus every
  text against the batch's videos, on the pooled vectors' dot products (no temperature).
* Overlapped positives: on segment items (``data.unit: segment``) the video clip paired with a
  sentence is not its exact segment but a span of ``min_seconds``-``max_seconds`` centred on a
  random point inside it, so positives overlap in time without being aligned.
* Retrieval-augmented batches: from the second epoch, every training video is embedded with the
  current model; each batch is a random video and ``global_batch - 1`` of its ``num_cands``
  nearest neighbours (hard negatives), rebuilt every epoch (MMPT's VideoVectorPool + VectorRetriever).

Inputs are features computed once (``family.features``, one step per feature); captions go
through the model's own text tower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily
from vtzoo.training.features import FeatureFamily, FeatureSpec, window


@dataclass
class VideoCLIPSettings:
    features: FeatureSpec = field(default_factory=lambda: FeatureSpec(extractor="s3d"))
    overlap: bool = True
    min_seconds: float = 3.0
    max_seconds: float = 32.0
    retrieval_augmented: bool = True
    num_cands: int = 64


class VideoCLIPTraining(FeatureFamily, TrainingFamily):
    Settings = VideoCLIPSettings

    def operator_features(self, op, item) -> torch.Tensor:
        return op.video_features(str(item.path))

    def load(self, op, sample, settings: VideoCLIPSettings, train, rng) -> dict[str, Any]:
        item = sample.item
        if train and settings.overlap and item.start is not None:
            stored = self.video_features(settings, type(item)(item.name, item.path))
            duration = float(stored["duration"])
            centre = rng.uniform(item.start, max(item.start, item.end or item.start))
            length = min(duration, rng.uniform(settings.min_seconds, settings.max_seconds))
            start = float(np.clip(centre - length / 2, 0.0, max(0.0, duration - length)))
            stored = window(stored, start, start + length)
        else:
            stored = self.video_features(settings, item)
        return {"features": stored["features"], "caption": pick_caption(sample, rng)}

    def collate(self, samples):
        return {"features": [s["features"] for s in samples], "caption": [s["caption"] for s in samples]}

    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        cfg = op.model.config
        length = max(cfg.max_video_len, *(f.shape[0] for f in batch["features"]))
        features = torch.zeros(len(batch["features"]), length, cfg.video_input_dim)
        mask = torch.zeros(features.shape[:2], dtype=torch.bool)
        for i, f in enumerate(batch["features"]):
            features[i, : f.shape[0]], mask[i, : f.shape[0]] = f, True
        caps, cmasks = op.caption_tensors(batch["caption"])
        video = op.model.forward_video(features.to(op.device), mask.to(op.device))
        text = op.model.forward_text(caps.to(op.device), cmasks.to(op.device))
        return {"video": video.pooled, "text": text.pooled}

    def loss(self, op, encoded, settings) -> torch.Tensor:
        video, text = encoded["video"].float(), encoded["text"].float()
        target = torch.arange(video.shape[0], device=video.device)
        return torch.nn.functional.cross_entropy(video @ text.T, target) + \
            torch.nn.functional.cross_entropy(text @ video.T, target)

    def video_input(self, op, batch) -> Any:
        return batch["features"]

    # -- retrieval-augmented batches --------------------------------------------------------------
    def epoch_order(self, run, samples, epoch) -> list[int] | None:
        settings = run.settings_for_epoch(epoch)
        if not settings.retrieval_augmented or epoch == 0:
            return None
        from vtzoo.training.evaluate import embed_videos

        videos = embed_videos(run, [s.item for s in samples])
        vectors = torch.nn.functional.normalize(videos.float(), dim=-1)
        rng = np.random.default_rng([run.seed, epoch, 0xC11])
        unused, order = set(range(len(samples))), []
        for anchor in rng.permutation(len(samples)):
            if int(anchor) not in unused:
                continue
            pool = sorted(unused - {int(anchor)})
            near = [pool[i] for i in torch.argsort(vectors[pool] @ vectors[int(anchor)], descending=True)[
                : settings.num_cands].tolist()]
            picked = rng.permutation(near)[: run.global_batch - 1].tolist() if near else []
            batch = [int(anchor), *picked]
            order += batch
            unused -= set(batch)
        return order


FAMILY = VideoCLIPTraining()
