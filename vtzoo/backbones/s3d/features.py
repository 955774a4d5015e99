"""Per-window S3D features of a whole video: the input VideoCLIP and COOT's S3D models consume.

The windowing is MMPT's ``video_feature_extractor --type s3d``: frames decoded at 30 fps,
shorter side scaled to 224 then centre-cropped to 224x224, RGB ``/ 255`` (no mean/std), the
frame count zero-padded up to a multiple of 30 and cut into 30-frame windows (one per second),
each window's 512-d ``video_embedding`` L2-normalised. Other consumers change the fields of
:class:`S3DWindowing` (another window length, ``mixed_5c`` instead of ``video_embedding``, ...).

Public API (also used by other families)::

    windows = frames_to_windows(frames, window_frames=30)     # (T, 3, H, W) -> (N, 3, 30, H, W)
    feats = window_features(s3d, windows)                      # (N, 512)
    extractor = S3DFeatureExtractor(s3d)                       # decode + window + features
    result = extractor("video.mp4")                            # S3DFeatures(features, ...)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from vtzoo.backbones.s3d.model import S3D
from vtzoo.errors import VtzooError


class EmptyVideoError(VtzooError, ValueError):
    """A video (or clip) that has no frame to extract a feature from."""


@dataclass
class S3DWindowing:
    """How a video becomes S3D windows. Defaults = MMPT's extractor (VideoCLIP's features)."""

    fps: float = 30.0  # decoding rate
    window_frames: int = 30  # frames per window: 30 at 30 fps = one feature per second
    resize: int = 224  # shorter side
    crop: int = 224  # centre crop
    interpolation: str = "bicubic"  # ffmpeg's default scaler in the original extractor
    output: Literal["video_embedding", "mixed_5c"] = "video_embedding"
    l2_normalize: bool = True  # the extractor's default (--l2_normalize 1)
    max_windows: int | None = None  # decode only the first windows (None = the whole video)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "S3DWindowing":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (values or {}).items() if k in names})

    def preprocessing(self) -> dict[str, Any]:
        """The decoding/preprocessing block (card schema) for :mod:`vtzoo.video`."""
        return {
            "fps": self.fps,
            "resize": self.resize,
            "crop": self.crop,
            # no mean/std: S3D takes RGB in [0, 1] (uint8 / 255)
            "interpolation": self.interpolation,
        }


@dataclass
class S3DFeatures:
    """Features of one video: ``features`` (N, D), one row per window, with provenance."""

    features: torch.Tensor
    num_frames: int  # real decoded frames (before zero padding)
    fps: float
    truncated: bool = False  # the video had more windows than ``max_windows``
    extras: dict[str, Any] = field(default_factory=dict)


def frames_to_windows(frames: torch.Tensor, window_frames: int = 30) -> torch.Tensor:
    """``(T, C, H, W)`` frames -> ``(N, C, window_frames, H, W)`` windows, N = ceil(T / window).

    The tail is zero-padded to a whole window, as the original extractor does (so the last
    feature of a video whose length is not a whole number of seconds sees black frames).
    """
    if frames.dim() != 4:
        raise ValueError(f"expected frames (T, C, H, W), got shape {tuple(frames.shape)}")
    t = frames.shape[0]
    if t == 0:
        raise EmptyVideoError("the clip has zero frames: there is nothing to extract S3D features from")
    missing = -t % window_frames
    if missing:
        frames = torch.cat([frames, frames.new_zeros((missing, *frames.shape[1:]))])
    n = frames.shape[0] // window_frames
    return frames.reshape(n, window_frames, *frames.shape[1:]).transpose(1, 2)


def window_features(
    model: S3D,
    windows: torch.Tensor,
    batch_size: int = 8,
    output: str = "video_embedding",
    l2_normalize: bool = True,
) -> torch.Tensor:
    """Run S3D on ``(N, 3, T, H, W)`` windows in batches -> ``(N, D)`` features."""
    if windows.dim() != 5 or windows.shape[1] != 3:
        raise ValueError(f"expected windows (N, 3, T, H, W), got shape {tuple(windows.shape)}")
    if windows.shape[0] == 0:
        raise EmptyVideoError("no window to extract S3D features from")
    param = next(model.parameters())
    parts = []
    for start in range(0, windows.shape[0], max(1, batch_size)):
        batch = windows[start : start + batch_size].to(device=param.device, dtype=param.dtype)
        parts.append(getattr(model(batch), output))
    features = torch.cat(parts)
    return F.normalize(features, dim=-1) if l2_normalize else features


class S3DFeatureExtractor:
    """Video (path, bytes, or decoded frames) -> per-window S3D features.

    Decoding goes through :func:`vtzoo.video.load_video` at ``windowing.fps``, a chunk
    of ``chunk_windows`` windows at a time (the frame grid is the same as one pass). Frames
    already decoded (numpy ``(T, H, W, C)`` / torch ``(T, C, H, W)``, uint8 or float in [0, 1])
    are taken as sampled at that rate already; they are resized and cropped like decoded ones.
    """

    def __init__(
        self,
        model: S3D,
        windowing: S3DWindowing | None = None,
        batch_size: int = 8,
        warn_truncation: bool = True,
        chunk_windows: int = 16,
    ):
        self.model = model.eval()
        self.windowing = windowing or S3DWindowing()
        self.batch_size = batch_size
        self.chunk_windows = max(1, chunk_windows)  # windows decoded per load_video call
        # callers that phrase the warning themselves (VideoCLIP) turn this off and read ``truncated``
        self.warn_truncation = warn_truncation

    def _preprocess(self):
        from vtzoo.video import Preprocess

        return Preprocess.from_card(self.windowing.preprocessing())

    def _windows_in(self, duration: float | None) -> int:
        """Windows of a video of ``duration`` seconds: round(duration * fps) frames, the last window padded."""
        if not duration or not np.isfinite(duration):
            return 0
        frames = int(round(duration * self.windowing.fps))
        return -(-frames // self.windowing.window_frames)

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        w = self.windowing
        windows = frames_to_windows(frames, w.window_frames)
        with torch.inference_mode():
            return window_features(self.model, windows, self.batch_size, w.output, w.l2_normalize)

    def _from_decoded(self, frames: Any) -> tuple[torch.Tensor, int, int, dict[str, Any]]:
        """Frames already sampled at the S3D rate: keep every one (resized and cropped)."""
        from vtzoo.video import load_video

        count = int(frames.shape[0])
        if count == 0:
            raise EmptyVideoError("the clip has zero frames: there is nothing to extract S3D features from")
        w = self.windowing
        limit = count if w.max_windows is None else min(count, w.max_windows * w.window_frames)
        clip = load_video(frames[:limit], num_frames=limit, preprocess=self._preprocess())
        full = -(-count // w.window_frames)
        return self._features(clip.frames), limit, full, {"backend": clip.backend}

    def _from_encoded(self, source: Any) -> tuple[torch.Tensor, int, int, dict[str, Any]]:
        """Decode ``chunk_windows`` windows at a time (long videos never sit in memory whole)."""
        from vtzoo.video import load_video, probe_video

        w = self.windowing
        info = probe_video(source)
        full = self._windows_in(info.duration)
        if info.num_frames == 0 or full == 0:
            raise EmptyVideoError(f"video {_describe(source)} has no frame")
        used = full if w.max_windows is None else min(full, w.max_windows)
        pre, window_seconds = self._preprocess(), w.window_frames / w.fps
        parts, num_frames, backend = [], 0, None
        for first in range(0, used, self.chunk_windows):
            last = min(first + self.chunk_windows, used)
            end = min(last * window_seconds, info.duration)
            clip = load_video(source, fps=w.fps, start=first * window_seconds, end=end, preprocess=pre)
            # at most the chunk's windows (a frame sampled on the boundary would open one more)
            frames = clip.frames[clip.mask.bool()][: (last - first) * w.window_frames]
            num_frames, backend = num_frames + frames.shape[0], clip.backend
            parts.append(self._features(frames))
        return torch.cat(parts), num_frames, full, {"backend": backend, "duration": info.duration}

    def __call__(self, source: Any) -> S3DFeatures:
        w = self.windowing
        if _is_decoded(source):
            feats, num_frames, full, extras = self._from_decoded(source)
        else:
            feats, num_frames, full, extras = self._from_encoded(source)
        truncated = w.max_windows is not None and full > w.max_windows
        if truncated and self.warn_truncation:
            warnings.warn(
                f"video {_describe(source)} has {full} windows of {w.window_frames / w.fps:g} s; only the "
                f"first {w.max_windows} are used (max_windows)",
                stacklevel=2,
            )
        extras["windowing"] = asdict(w)
        return S3DFeatures(features=feats, num_frames=num_frames, fps=w.fps, truncated=truncated, extras=extras)


def _is_decoded(source: Any) -> bool:
    return isinstance(source, (torch.Tensor, np.ndarray))


def _describe(source: Any) -> str:
    if isinstance(source, (str, bytes)) and len(source) < 200:
        return repr(source) if isinstance(source, str) else f"<{len(source)} bytes>"
    shape = getattr(source, "shape", None)
    return f"<frames {tuple(shape)}>" if shape is not None else f"<{type(source).__name__}>"
