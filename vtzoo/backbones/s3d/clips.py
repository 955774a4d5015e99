"""S3D clip features for models defined on them (VideoBERT, CBT): a video, or its features, in.

``S3DClips`` turns whatever a user has into (N, D) clip features with provenance: a path, bytes
or decoded frames go through S3D (seeded random weights unless ``weights`` are given), a float
tensor (N, D) is taken as features already. ``extractor_id`` names the weights and the windowing,
so what was fitted or trained on one extractor's features can refuse another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DWindowing
from vtzoo.errors import InputError


@dataclass
class S3DClips:
    windowing: S3DWindowing = field(default_factory=S3DWindowing)
    weights: Any = None  # None / "random": seeded random S3D; else anything S3D.from_pretrained reads
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 8
    _extractor: S3DFeatureExtractor | None = field(default=None, init=False, repr=False)

    @property
    def dim(self) -> int:
        return 1024 if self.windowing.output == "mixed_5c" else 512

    @property
    def extractor_id(self) -> str:
        w = self.windowing
        weights = f"random:{self.seed}" if self.weights in (None, "random") else str(self.weights)
        return f"s3d[{weights}]/{w.output}/{w.fps:g}fps/{w.window_frames}f/{w.crop}px"

    @property
    def extractor(self) -> S3DFeatureExtractor:
        if self._extractor is None:
            from vtzoo.backbones.s3d.model import S3D, S3DConfig

            if self.weights in (None, "random"):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    s3d = S3D(S3DConfig())
            else:
                s3d = S3D.from_pretrained(self.weights)
            self._extractor = S3DFeatureExtractor(s3d.to(self.device), self.windowing, batch_size=self.batch_size)
        return self._extractor

    def __call__(self, video: Any, source: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """(N, dim) features of one video and its provenance record."""
        record = {"source": source, "backend": None, "fallback": None, "indices": None, "timestamps": None, "rotation": 0}
        if isinstance(video, torch.Tensor) and video.is_floating_point() and video.dim() == 2:
            if video.shape[1] != self.dim:
                raise InputError(f"clip features must be (N, {self.dim}), got {tuple(video.shape)}", source=source)
            return video.float(), record
        result = self.extractor(video)
        clip = self.windowing.window_frames
        record.update(backend=result.extras.get("backend"), clips=int(result.features.shape[0]),
                      padded_last_clip=result.num_frames % clip != 0)
        return result.features.float().cpu(), record
