"""A single MDMMT expert behind the operator interface (``vtzoo.create("mdmmt/expert-vggish")``).

``embed_video`` returns the expert's segment features as ``tokens`` (N, L, dim) with ``mask``
(N, L), their [start, end] times in ``extras["timings"]`` (one (L_i, 2) array per video) and
the mean over segments as ``pooled``. A video the expert has nothing for (no audio track) gets a
zero row and an all-zero mask.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.operators.base import VIDEO_EMBEDDING, Embeddings, Operator, VideoInput
from vtzoo.operators.mdmmt.experts.build import build_expert


class ExpertOperator(Operator):
    """One feature extractor (CLIP frames, VGGish or irCSN-152)."""

    name = "mdmmt"
    tasks = frozenset({VIDEO_EMBEDDING})

    def __init__(self, extractor: Any, card: Any = None, device: str | torch.device = "cpu"):
        network = getattr(extractor, "model", None)
        if network is None:
            network = extractor.towers  # the CLIP frame expert
        super().__init__(network, card, device)
        self.extractor = extractor

    @classmethod
    def build(cls, card: Any, weights: Any = None, device: str | torch.device = "cpu", **config: Any) -> "ExpertOperator":
        if weights is None and card.hub is not None:
            weights = f"hf://{card.hub.repo}@{card.hub.revision}"
        cfg = {k: v for k, v in card.config.items() if k not in ("expert", "name")}
        cfg.update(config)
        extractor = build_expert(card.config["expert"], card.config.get("name", card.variant), weights, cfg, device)
        return cls(extractor, card, device)

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
        if not items:
            raise ValueError("embed_video needs at least one video (got an empty list)")
        seqs = [self.extractor(item) for item in items]
        dim = self.extractor.dim
        length = max([1] + [len(s.features) for s in seqs if s is not None])
        tokens = torch.zeros(len(items), length, dim)
        mask = torch.zeros(len(items), length, dtype=torch.long)
        timings = []
        for row, seq in enumerate(seqs):
            if seq is None:
                timings.append(np.zeros((0, 2)))
                continue
            n = len(seq.features)
            tokens[row, :n] = torch.as_tensor(np.asarray(seq.features), dtype=torch.float32)
            mask[row, :n] = 1
            timings.append(np.asarray(seq.timings))
        counts = mask.sum(1, keepdim=True).clamp(min=1)
        pooled = (tokens * mask[..., None]).sum(1) / counts
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras={"timings": timings})

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> list[Any]:
        """Synthetic inputs: 10 s of 16 kHz noise for VGGish, random uint8 frames otherwise."""
        rng = np.random.RandomState(0)
        if hasattr(self.extractor, "embed_waveform"):
            return [(rng.uniform(-0.5, 0.5, 160000), 16000) for _ in range(batch_size)]
        size = int(getattr(self.extractor, "size", 224))
        frames = int(num_frames or getattr(self.extractor, "frames_per_clip", 8))
        if getattr(self.extractor, "source_fps", None) is None:
            self.extractor.source_fps = float(self.extractor.fps)  # decoded frames need their rate
        return [rng.randint(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(batch_size)]
