"""What MDMMT's experts share as operators: a video -> a sequence of timed segment features.

Each expert (``vggish``, ``ircsn152``, ``clip_frames``) is an operator of its own; MDMMT builds
them with ``vtzoo.create`` and collects :meth:`ExpertOperator.extract` of each. ``embed_video``
returns an expert's segment features as ``tokens`` (N, L, dim) with ``mask`` (N, L), their
[start, end] times in ``extras["timings"]`` (one (L_i, 2) array per video) and the mean over
segments as ``pooled``. A video the expert has nothing for (no audio track) gets a zero row and
an all-zero mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.operators.base import (
    VIDEO_EMBEDDING,
    Embeddings,
    InputError,
    Operator,
    OperatorOptions,
    VideoInput,
)
from vtzoo.operators.mdmmt.collate import ExpertSequence


def segment_timings(count: int, seconds: float) -> np.ndarray:
    """[start, end] of ``count`` back-to-back segments of ``seconds``, rounded to 2 decimals (the
    original dumper writes ``"%.2f"`` timings and its dataset reads them back)."""
    starts = np.arange(count, dtype=np.float64) * seconds
    return np.round(np.stack([starts, starts + seconds], axis=1), 2).reshape(count, 2)


def is_decoded(source: Any) -> bool:
    return isinstance(source, (np.ndarray, torch.Tensor))


@dataclass
class FrameExpertOptions(OperatorOptions):
    """Options of the experts that read frames. ``fps`` / ``size`` (short side and centre crop)
    override the card's; ``source_fps`` is the frame rate of decoded-frame input."""

    fps: float | None = None
    size: int | None = None
    source_fps: float | None = None


class ExpertOperator(Operator):
    """One MDMMT expert: ``extract`` gives a video's :class:`ExpertSequence` (None: nothing)."""

    tasks = frozenset({VIDEO_EMBEDDING})
    default_batch_size = 64

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def extract(self, video: Any) -> tuple[ExpertSequence | None, dict[str, Any]]:
        """One video -> its segment features (None when the expert has nothing for it) and the
        provenance of what was decoded."""
        raise NotImplementedError

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
        if not items:
            raise InputError("embed_video needs at least one video (got an empty list)")
        seqs, provenance = zip(*(self.extract(item) for item in items))
        length = max([1] + [len(s.features) for s in seqs if s is not None])
        tokens = torch.zeros(len(items), length, self.dim)
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
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask,
                          extras={"timings": timings, "provenance": list(provenance)})  # fmt: skip

    def _encode(self, fn, inputs: torch.Tensor) -> torch.Tensor:
        """``fn`` over batches of ``inputs`` under :meth:`compute`, as float32 on the CPU."""
        if inputs.shape[0] == 0:
            return torch.zeros(0, self.dim)
        return torch.cat([out.float().cpu() for out in self.map_batches(fn, inputs)])
