"""Which frames to decode: pure functions of the frame timestamps, so every backend agrees.

Rules (``first``/``last`` are the first and last frame inside the window):

- window: the frames whose presentation time ``ts`` satisfies ``start <= ts < end``
  (``end`` exclusive; no ``start`` = 0, no ``end`` = the whole video).
- ``"uniform"``: ``np.linspace(first, last, num_frames).astype(int)``: evenly spaced, rounded
  down, first and last frame included. Over a whole video this is exactly CLIP4Clip's
  ``np.linspace(0, n - 1, num).astype(int)``. With fewer frames than ``num_frames`` it repeats
  frames (``pad=False``) or returns every frame once and pads (``pad=True``).
- ``"middle"``: the window is cut into ``min(num_frames, count)`` equal integer segments
  (``np.linspace(first, last + 1, k + 1).astype(int)``) and the middle frame of each,
  ``(seg_start + seg_end - 1) // 2``, is taken (Frozen in Time's and TSN's test-time rule).
  With fewer frames than ``num_frames`` it returns each frame once (padded when ``pad=True``).
- fps: target times ``t = start + k / fps`` for ``k = 0, 1, ...`` while ``t < end``; each picks
  the frame whose timestamp is nearest to ``t`` (a tie goes to the earlier frame). Above the
  video's own rate frames repeat. With ``max_frames``, a longer result is thinned uniformly
  with ``np.linspace(0, len - 1, max_frames).astype(int)`` (CLIP4Clip's ``slice_framepos=2``).
"""

from __future__ import annotations

import math

import numpy as np

_TIME_EPS = 1e-6  # seconds: absorbs float rounding in container timestamps
_TIE_EPS = 1e-4  # seconds: two frames this close to a target time count as a tie


class SamplingError(ValueError):
    """A request the video cannot satisfy (e.g. a window past its end)."""


def window_range(timestamps: np.ndarray, start: float | None, end: float | None) -> tuple[int, int]:
    """Inclusive (first, last) frame indices shown in ``[start, end)`` seconds."""
    start = 0.0 if start is None else float(start)
    if end is not None and end <= start:
        raise ValueError(f"the window end ({end}) must be after its start ({start})")
    first = int(np.searchsorted(timestamps, start - _TIME_EPS, side="left"))
    stop = len(timestamps) if end is None else int(np.searchsorted(timestamps, float(end) - _TIME_EPS, side="left"))
    if first >= stop:
        raise SamplingError(
            f"no frame is shown in the window [{start:g}, {'end' if end is None else f'{end:g}'}) s "
            f"(frames span 0..{float(timestamps[-1]):.3f} s)"
        )
    return first, stop - 1


def uniform_indices(first: int, last: int, num_frames: int, pad: bool = False) -> list[int]:
    count = last - first + 1
    if pad and count < num_frames:
        return list(range(first, last + 1))
    return np.linspace(first, last, num_frames).astype(int).tolist()


def middle_indices(first: int, last: int, num_frames: int) -> list[int]:
    segments = min(num_frames, last - first + 1)
    edges = np.linspace(first, last + 1, segments + 1).astype(int)
    return ((edges[:-1] + edges[1:] - 1) // 2).tolist()


def fps_times(start: float, end: float, fps: float) -> np.ndarray:
    """Target times ``start + k / fps`` strictly before ``end``."""
    count = max(1, math.ceil((end - start) * fps - 1e-9))
    times = start + np.arange(count, dtype=np.float64) / fps
    return times[times < end - _TIME_EPS] if count > 1 else times


def nearest_frames(timestamps: np.ndarray, times: np.ndarray, first: int, last: int) -> list[int]:
    """For each time, the frame in ``first..last`` with the nearest timestamp (ties -> earlier)."""
    window = timestamps[first : last + 1]
    right = np.clip(np.searchsorted(window, times, side="left"), 1, max(len(window) - 1, 1))
    left = right - 1
    if len(window) == 1:
        return [first] * len(times)
    take_right = (window[right] - times) < (times - window[left]) - _TIE_EPS
    return (first + np.where(take_right, right, left)).tolist()


def fps_indices(
    timestamps: np.ndarray,
    duration: float,
    fps: float,
    start: float | None,
    end: float | None,
    max_frames: int | None,
) -> list[int]:
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    first, last = window_range(timestamps, start, end)
    begin = 0.0 if start is None else float(start)
    stop = duration if end is None else min(float(end), duration)
    indices = nearest_frames(timestamps, fps_times(begin, stop, fps), first, last)
    if max_frames is not None and len(indices) > max_frames:
        keep = np.linspace(0, len(indices) - 1, max_frames).astype(int)
        indices = [indices[k] for k in keep]
    return indices
