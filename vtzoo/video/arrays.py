"""Frames that are already decoded (numpy or torch), behind the same backend interface.

Accepted layouts (anything else raises :class:`VideoDecodeError` naming the expected layout):

- numpy ``(T, H, W, C)``: uint8 (0..255) or float (values in [0, 1]);
- torch ``(T, C, H, W)`` or ``(T, H, W, C)``: uint8 (0..255) or float (values in [0, 1]).

``C`` is 3 (RGB) or 1 (grey, repeated to RGB). The channel axis is found by its size: numpy
arrays are read channels-last and torch tensors channels-first unless only the other axis has
size 1 or 3. Frames are returned as given (no rounding); there is no time axis, so sampling
by seconds needs ``source_fps``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.video.backends import VideoInfo, _check_range
from vtzoo.video.errors import VideoDecodeError

ARRAY_LABEL = "<array>"
EXPECTED_LAYOUT = (
    "expected decoded frames as numpy (T, H, W, C) or torch (T, C, H, W) / (T, H, W, C), "
    "C = 3 (RGB) or 1, dtype uint8 (0..255) or float (0..1)"
)
_FLOAT_SLACK = 1e-3  # float frames a resize or a colour conversion left a hair outside [0, 1]


def is_decoded_frames(source: Any) -> bool:
    return isinstance(source, (np.ndarray, torch.Tensor))


def as_tchw(source: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate decoded frames and return them as a (T, 3, H, W) uint8 or float32 tensor."""
    frames = torch.from_numpy(np.ascontiguousarray(source)) if isinstance(source, np.ndarray) else source.detach().cpu()
    shape = tuple(frames.shape)
    if frames.dim() != 4:
        raise VideoDecodeError(ARRAY_LABEL, f"got shape {shape}; {EXPECTED_LAYOUT}")
    channels_last_first = isinstance(source, np.ndarray)
    last_ok, first_ok = shape[3] in (1, 3), shape[1] in (1, 3)
    if last_ok and (channels_last_first or not first_ok):
        frames = frames.permute(0, 3, 1, 2)
    elif not first_ok:
        raise VideoDecodeError(ARRAY_LABEL, f"got shape {shape} with no channel axis of size 1 or 3; {EXPECTED_LAYOUT}")
    if frames.shape[0] == 0:
        raise VideoDecodeError(ARRAY_LABEL, "got zero frames (T = 0)")
    if frames.dtype == torch.uint8:
        pass
    elif frames.is_floating_point():
        frames = frames.float()
        low, high = float(frames.min()), float(frames.max())
        if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK or not np.isfinite([low, high]).all():
            raise VideoDecodeError(
                ARRAY_LABEL, f"float frames must hold values in [0, 1], got [{low:.4g}, {high:.4g}] (pass uint8 for 0..255)"
            )
    else:
        raise VideoDecodeError(ARRAY_LABEL, f"got dtype {frames.dtype}; {EXPECTED_LAYOUT}")
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    return frames


class ArrayBackend:
    """Serves frames from memory; ``source_fps`` (if known) gives them a time axis."""

    name = "array"
    rotation = 0  # decoded frames are taken as upright

    def __init__(self, frames: np.ndarray | torch.Tensor, source_fps: float | None = None):
        self.label = ARRAY_LABEL
        self._frames = as_tchw(frames)
        self._fps = float(source_fps) if source_fps else float("nan")

    def probe(self) -> VideoInfo:
        t, _, h, w = self._frames.shape
        return VideoInfo(t, self._fps, t / self._fps, w, h, self.name)

    def timestamps(self) -> np.ndarray:
        return np.arange(self._frames.shape[0], dtype=np.float64) / self._fps

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        _check_range(indices, self._frames.shape[0], self.label)
        return self._frames[torch.as_tensor(list(indices), dtype=torch.long)]

    def close(self) -> None:
        self._frames = None
