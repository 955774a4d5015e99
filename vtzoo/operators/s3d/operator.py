"""The ``s3d`` operator: S3D features of a video on their own (one feature per window).

``features`` returns, per video, its ``(windows, 512)`` features (the pipeline step
``s3d.features``, whose output ``videoclip.embed_video`` takes as is); ``embed_video`` returns
every window's feature in ``tokens`` (N, L, 512) with ``mask`` and their mean in ``pooled``
(the mean of the L2-normalised window features, not itself normalised). The windowing comes
from the card's preprocessing (MMPT's: 30 fps, 30-frame windows, 224 crop) and any
:class:`S3DWindowing` field can be overridden at ``create`` time, e.g.
``vtzoo.create("s3d", window_frames=16, output="mixed_5c")``.
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DWindowing
from vtzoo.backbones.s3d.model import S3D
from vtzoo.operators.base import VIDEO_EMBEDDING, Embeddings, Operator
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import build_model


@register_operator("s3d")
class S3DOperator(Operator):
    tasks = frozenset({VIDEO_EMBEDDING})
    default_variant = "howto100m-milnce"
    # a pipeline step "s3d.features": per-video (windows, D) tensors, e.g. for videoclip/coot
    pipeline_methods = ("features",)

    def __init__(self, model: S3D, card=None, device: str | torch.device = "cpu", windowing: S3DWindowing | None = None,
                 batch_size: int = 8):  # fmt: skip
        super().__init__(model, card, device)
        self.windowing = windowing or S3DWindowing.from_dict(card.preprocessing if card is not None else None)
        self.extractor = S3DFeatureExtractor(self.model, self.windowing, batch_size)

    @classmethod
    def build(cls, card=None, weights: Any = None, device: str | torch.device = "cpu", **config: Any) -> "S3DOperator":
        """Extra keywords: any :class:`S3DWindowing` field and ``batch_size``; the rest overrides :class:`S3DConfig`."""
        window_fields = set(S3DWindowing.__dataclass_fields__)
        window_values = dict(card.preprocessing) if card is not None else {}
        window_values.update({k: config.pop(k) for k in list(config) if k in window_fields})
        batch_size = int(config.pop("batch_size", 8))
        model, _ = build_model(S3D, card, weights, overrides=config)
        return cls(model.eval(), card, device, S3DWindowing.from_dict(window_values), batch_size)

    def features(self, videos: Any) -> list[torch.Tensor]:
        """Per-video window features, each ``(windows, D)`` (float32, CPU)."""
        items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
        if not items:
            raise ValueError("features needs at least one video")
        return [self.extractor(video).features.float().cpu() for video in items]

    def embed_video(self, videos: Any) -> Embeddings:
        parts = []
        for feats in self.features(videos):
            parts.append(
                Embeddings(
                    pooled=feats.mean(dim=0, keepdim=True),
                    tokens=feats.unsqueeze(0),
                    mask=torch.ones((1, feats.shape[0]), dtype=torch.long),
                )
            )
        return Embeddings.concat(parts)

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Decoded clips (num_frames, 3, crop, crop) in [0, 1], one window each by default."""
        frames = num_frames or self.windowing.window_frames
        crop = self.windowing.crop
        generator = torch.Generator().manual_seed(0)
        return [torch.rand(frames, 3, crop, crop, generator=generator) for _ in range(batch_size)]
