"""Raw video -> COOT's YouCook2 video features (HowTo100M S3D, the original's ``extract_100m_features.py``).

The original extracts frames at 16 fps, 256x256 (a centred square crop scaled to 256; vtzoo
resizes the shorter side to 256 and centre-crops 256, the same region), RGB / 255 (no mean/std),
and runs the HowTo100M S3D on windows of 32 frames every 16 frames: one 512-d
``video_embedding`` (not normalised) per second. Windows that would run past the end are
replaced by the LAST 32 frames (so the tail feature can repeat); a video shorter than 32 frames
gives one feature from its first 16 frames (zero-padded to 16 when shorter, where the original
fails). Frames are decoded a few windows at a time, so long videos do not fill the memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vtzoo.operators.coot.model import CootInputError


@dataclass
class CootS3DWindowing:
    """How raw video becomes S3D features for COOT. Defaults = the original YouCook2 extraction."""

    fps: float = 16.0
    resize: int = 256
    crop: int = 256
    interpolation: str = "bicubic"
    kernel: int = 32  # frames per window
    stride: int = 16  # frames between window starts: 16 at 16 fps = one feature per second
    short_video_frames: int = 16  # a video shorter than one window: its first 16 frames
    output: str = "video_embedding"
    batch_size: int = 4  # windows per S3D call (and per decoding chunk)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "CootS3DWindowing":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (values or {}).items() if k in names})

    def preprocessing(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "interpolation": self.interpolation}

    @property
    def features_per_second(self) -> float:
        return self.fps / self.stride


def window_starts(num_frames: int, kernel: int = 32, stride: int = 16) -> list[int]:
    """Start frame of each window (the original's loop, including its repeated tail windows)."""
    starts = []
    for pointer in range(0, num_frames, stride):
        if pointer + kernel <= num_frames:
            starts.append(pointer)
        elif num_frames > kernel:
            starts.append(num_frames - kernel)
    return starts


class CootS3DExtractor:
    """Decode a video (path, bytes, or frames already sampled at ``fps``) -> S3D features (N, 512)."""

    def __init__(self, s3d: torch.nn.Module, windowing: CootS3DWindowing | None = None):
        self.s3d = s3d.eval()
        self.windowing = windowing or CootS3DWindowing()

    def _preprocess(self):
        from vtzoo.video import Preprocess

        return Preprocess.from_card(self.windowing.preprocessing())

    def _run(self, windows: list[torch.Tensor]) -> torch.Tensor:
        param = next(self.s3d.parameters())
        batch = torch.stack(windows).transpose(1, 2).to(device=param.device, dtype=param.dtype)  # (B, 3, T, H, W)
        with torch.inference_mode():
            return getattr(self.s3d(batch), self.windowing.output).float().cpu()

    def from_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Preprocessed frames (T, 3, H, W) in [0, 1], sampled at ``fps`` -> (N, D) features."""
        w = self.windowing
        n = int(frames.shape[0])
        if n == 0:
            raise CootInputError("the video has zero frames")
        starts = window_starts(n, w.kernel, w.stride)
        if not starts:
            short = frames[: w.short_video_frames]
            if short.shape[0] < w.short_video_frames:
                short = torch.cat([short, short.new_zeros((w.short_video_frames - short.shape[0], *short.shape[1:]))])
            return self._run([short])
        parts = []
        for i in range(0, len(starts), w.batch_size):
            parts.append(self._run([frames[s : s + w.kernel] for s in starts[i : i + w.batch_size]]))
        return torch.cat(parts)

    def __call__(self, source: Any) -> tuple[torch.Tensor, float, dict[str, Any]]:
        """-> (features (N, D), duration in seconds, provenance)."""
        from vtzoo.video import VideoClip, load_video, probe_video
        from vtzoo.video.sampling import fps_times

        w = self.windowing
        pre = self._preprocess()
        if isinstance(source, VideoClip):
            frames = source.frames[source.mask.bool()] if source.mask is not None else source.frames
            features = self.from_frames(frames)
            return features, frames.shape[0] / w.fps, {"backend": source.backend, "source": source.source}
        if isinstance(source, (torch.Tensor, np.ndarray)):
            count = int(source.shape[0])
            if count == 0:
                raise CootInputError("the video has zero frames")
            clip = load_video(source, num_frames=count, preprocess=pre)
            return self.from_frames(clip.frames), count / w.fps, {"backend": clip.backend}
        info = probe_video(source)
        if info.num_frames == 0 or not info.duration > 0:
            raise CootInputError(f"video {source!r} has zero frames")
        total = len(fps_times(0.0, info.duration, w.fps))
        starts = window_starts(total, w.kernel, w.stride)
        if not starts:
            clip = load_video(source, fps=w.fps, preprocess=pre)
            return self.from_frames(clip.frames), info.duration, {"backend": clip.backend}
        parts = []
        for i in range(0, len(starts), w.batch_size):
            group = starts[i : i + w.batch_size]
            first, stop = group[0], group[-1] + w.kernel
            # decode exactly the frames these windows need (frame k is at time k / fps)
            clip = load_video(source, fps=w.fps, start=first / w.fps, end=min(stop / w.fps, info.duration), preprocess=pre)
            frames = clip.frames
            if frames.shape[0] < stop - first:  # rounding at the very end: repeat the last frame
                frames = torch.cat([frames, frames[-1:].expand(stop - first - frames.shape[0], -1, -1, -1)])
            parts.append(self._run([frames[s - first : s - first + w.kernel] for s in group]))
        return torch.cat(parts), info.duration, {"backend": info.backend, "windowing": asdict(w)}
