"""The ``s3d`` operator: S3D features of a video on their own (one feature per window).

``features`` returns, per video, its ``(windows, 512)`` features (the pipeline step
``s3d.features``, whose output ``videoclip.embed_video`` takes as is); ``embed_video`` returns
every window's feature in ``tokens`` (N, L, 512) with ``mask`` and their mean in ``pooled``
(the mean of the L2-normalised window features, not itself normalised). The windowing is the
backbone's (:mod:`vtzoo.backbones.s3d.features`), read from the card's preprocessing (MMPT's: 30
fps, 30-frame windows, 224 crop); every :class:`S3DWindowing` field is an option, e.g.
``vtzoo.create("s3d", window_frames=16, output="mixed_5c")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DFeatures, S3DWindowingOptions
from vtzoo.backbones.s3d.model import S3D
from vtzoo.operators.base import VIDEO_EMBEDDING, Embeddings, Operator, OperatorOptions, video_items
from vtzoo.registry.operators import register_operator
from vtzoo.video import VideoInputSpec


@dataclass
class S3DOptions(S3DWindowingOptions, OperatorOptions):
    """The shell's options and every windowing field (None: the card's)."""


@register_operator("s3d")
class S3DOperator(Operator):
    summary = "S3D (MIL-NCE, HowTo100M) features, one per window (a second by default)"
    tasks = frozenset({VIDEO_EMBEDDING})
    default_variant = "howto100m-milnce"
    model_class = S3D
    options_class = S3DOptions
    default_batch_size = 8  # windows per S3D call
    # a pipeline step "s3d.features": per-video (windows, D) tensors, e.g. for videoclip/coot
    pipeline_methods = ("features",)

    def setup(self) -> None:
        self.windowing = self.options.windowing(self.preprocessing)
        self.extractor = S3DFeatureExtractor(self.model, self.windowing, self.batch_size)

    @property
    def video_input(self) -> VideoInputSpec:
        """Frames at the windowing's rate, resized and cropped (a whole video: no frame limit)."""
        return VideoInputSpec.from_card({"fps": self.windowing.fps, **self.windowing.preprocessing()})

    def _extract(self, videos: Any) -> list[S3DFeatures]:
        items = video_items(videos)
        with self.compute():
            return [self.extractor(self.load_clip(v) if _is_clip(v) else v) for v in items]

    def features(self, videos: Any) -> list[torch.Tensor]:
        """Per-video window features, each ``(windows, D)`` (float32, CPU)."""
        return [result.features.float().cpu() for result in self._extract(videos)]

    def embed_video(self, videos: Any) -> Embeddings:
        parts = []
        for result in self._extract(videos):
            feats = result.features.float().cpu()
            parts.append(Embeddings(pooled=feats.mean(dim=0, keepdim=True), tokens=feats.unsqueeze(0),
                                    mask=torch.ones((1, feats.shape[0]), dtype=torch.long),
                                    extras={"provenance": [result.provenance]}))  # fmt: skip
        return Embeddings.concat(parts)

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Decoded clips (num_frames, 3, crop, crop) in [0, 1], one window each by default."""
        frames = num_frames or self.windowing.window_frames
        crop = self.windowing.crop
        generator = torch.Generator().manual_seed(0)
        return [torch.rand(frames, 3, crop, crop, generator=generator) for _ in range(batch_size)]

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        # the network has no size knobs (its paper fixes them): small windows keep it fast
        return {"window_frames": 8, "resize": 32, "crop": 32}


def _is_clip(value: Any) -> bool:
    from vtzoo.video import VideoClip

    return isinstance(value, VideoClip)
