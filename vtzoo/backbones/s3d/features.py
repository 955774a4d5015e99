"""Per-window S3D features of a whole video: the input VideoCLIP and COOT's S3D models consume.

One windowing rule serves every consumer, set by :class:`S3DWindowing`:

* frames are decoded at ``fps`` (``round(duration * fps)`` of them, the count ffmpeg's ``fps``
  filter gives, which both originals extracted frames with), shorter side scaled to ``resize``,
  centre-cropped to ``crop``, RGB ``/ 255`` (no mean/std);
* a window of ``window_frames`` frames starts every ``stride`` frames (default: no overlap); a
  window that would run past the end is zero-padded (``tail="pad"``) or replaced by the video's
  last ``window_frames`` frames (``tail="last"``); with ``"last"``, a video shorter than one
  window gives one window of its first ``short_video_frames`` frames (zero-padded to that many);
* each window's ``output`` (512-d ``video_embedding`` or 1024-d ``mixed_5c``), optionally
  L2-normalised.

The defaults are MMPT's ``video_feature_extractor --type s3d`` (VideoCLIP's features: 30 fps,
224 px, 30-frame windows, zero-padded tail, L2-normalised); :data:`COOT_WINDOWING` is COOT's
``extract_100m_features.py`` (16 fps, 256 px, 32-frame windows every 16 frames, last-window tail,
16-frame short videos, not normalised).

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
from vtzoo.errors import InputError

TAILS = ("pad", "last")


class EmptyVideoError(InputError):
    """A video (or clip) that has no frame to extract a feature from."""


@dataclass
class S3DWindowing:
    """How a video becomes S3D windows. Defaults = MMPT's extractor (VideoCLIP's features)."""

    fps: float = 30.0  # decoding rate
    window_frames: int = 30  # frames per window: 30 at 30 fps = one feature per second
    stride: int | None = None  # frames between window starts (None: window_frames, no overlap)
    tail: Literal["pad", "last"] = "pad"  # a window past the end: zero-padded, or the last window_frames frames
    short_video_frames: int | None = None  # tail="last": frames of the one window of a shorter video (None: window_frames)
    resize: int = 224  # shorter side
    crop: int = 224  # centre crop
    interpolation: str = "bicubic"  # ffmpeg's default scaler in the original extractor
    output: Literal["video_embedding", "mixed_5c"] = "video_embedding"
    l2_normalize: bool = True  # the extractor's default (--l2_normalize 1)
    max_windows: int | None = None  # decode only the first windows (None = the whole video)

    def __post_init__(self) -> None:
        if self.tail not in TAILS:
            raise ValueError(f"S3DWindowing.tail must be one of {TAILS}, got {self.tail!r}")
        for name in ("window_frames", "stride", "short_video_frames", "max_windows"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"S3DWindowing.{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "S3DWindowing":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (values or {}).items() if k in names})

    @property
    def step(self) -> int:
        """Frames between the starts of two windows."""
        return self.stride or self.window_frames

    @property
    def features_per_second(self) -> float:
        return self.fps / self.step

    def frames_in(self, duration: float | None) -> int:
        """Frames decoding ``duration`` seconds at ``fps`` gives: ``round(duration * fps)``, as
        ffmpeg's ``fps`` filter does (0 for an unknown duration)."""
        if not duration or not np.isfinite(duration):
            return 0
        return int(round(duration * self.fps))

    def starts(self, num_frames: int) -> list[int]:
        """First frame of every window of ``num_frames`` frames (see :func:`window_starts`)."""
        return window_starts(num_frames, self.window_frames, self.stride, self.tail)

    def preprocessing(self) -> dict[str, Any]:
        """The decoding/preprocessing block (card schema) for :mod:`vtzoo.video`."""
        return {
            "fps": self.fps,
            "resize": self.resize,
            "crop": self.crop,
            # no mean/std: S3D takes RGB in [0, 1] (uint8 / 255)
            "interpolation": self.interpolation,
        }

    def input_spec(self):
        """The :class:`~vtzoo.video.VideoInputSpec` decoding a video for these windows."""
        from vtzoo.video import Preprocess, VideoInputSpec

        return VideoInputSpec(sampling={"fps": self.fps}, preprocess=Preprocess.from_card(self.preprocessing()))


@dataclass
class S3DWindowingOptions:
    """Operator options over the card's :class:`S3DWindowing` (None: the card's value), for the
    operators that turn raw video into S3D features (mixed into their options dataclass)."""

    fps: float | None = None
    window_frames: int | None = None
    stride: int | None = None
    resize: int | None = None
    crop: int | None = None
    interpolation: str | None = None
    l2_normalize: bool | None = None
    s3d_batch_size: int = 8  # windows per S3D forward pass

    def windowing(self, preprocessing: dict[str, Any] | None, **fixed: Any) -> S3DWindowing:
        """The card's windowing (``preprocessing``), these options over it, then ``fixed``."""
        values = {**(preprocessing or {})}
        values.update({name: getattr(self, name) for name in _WINDOWING_OPTIONS if getattr(self, name) is not None})
        return S3DWindowing.from_dict({**values, **fixed})


_WINDOWING_OPTIONS = ("fps", "window_frames", "stride", "resize", "crop", "interpolation", "l2_normalize")


# COOT's extractor (extract_100m_features.py of coot-videotext): its YouCook2 S3D features
COOT_WINDOWING = S3DWindowing(fps=16.0, window_frames=32, stride=16, tail="last", short_video_frames=16, resize=256,
                              crop=256, l2_normalize=False)  # fmt: skip


@dataclass
class S3DFeatures:
    """Features of one video: ``features`` (N, D), one row per window, with provenance."""

    features: torch.Tensor
    num_frames: int  # real decoded frames (before zero padding)
    fps: float
    truncated: bool = False  # the video had more windows than ``max_windows``
    extras: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None  # seconds of video the windows were laid over
    provenance: dict[str, Any] = field(default_factory=dict)  # the decoded frames (VideoClip.provenance layout)


def window_starts(num_frames: int, window_frames: int = 30, stride: int | None = None, tail: str = "pad") -> list[int]:
    """First frame of each window: one every ``stride`` frames (default ``window_frames``).

    A window that would run past the end starts where it is and is zero-padded (``tail="pad"``:
    so the last feature of a video whose length is not a whole number of windows sees black
    frames), or is replaced by the last ``window_frames`` frames (``tail="last"``: the tail
    feature can repeat; a video shorter than one window has no window then).
    """
    step = stride or window_frames
    starts = []
    for pointer in range(0, num_frames, step):
        if pointer + window_frames <= num_frames or tail == "pad":
            starts.append(pointer)
        elif num_frames > window_frames:
            starts.append(num_frames - window_frames)
    return starts


def _zero_pad(frames: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - frames.shape[0]
    return torch.cat([frames, frames.new_zeros((missing, *frames.shape[1:]))]) if missing > 0 else frames


def _cut_windows(frames: torch.Tensor, starts: list[int], window_frames: int) -> torch.Tensor:
    """``(T, C, H, W)`` -> ``(len(starts), C, window_frames, H, W)``, zero-padded past the end."""
    frames = _zero_pad(frames, starts[-1] + window_frames)
    if starts == list(range(starts[0], starts[0] + len(starts) * window_frames, window_frames)):
        # back-to-back windows: a view of the frames, no copy
        first = starts[0]
        block = frames[first : first + len(starts) * window_frames]
        return block.reshape(len(starts), window_frames, *frames.shape[1:]).transpose(1, 2)
    return torch.stack([frames[s : s + window_frames] for s in starts]).transpose(1, 2)


def frames_to_windows(
    frames: torch.Tensor,
    window_frames: int = 30,
    stride: int | None = None,
    tail: str = "pad",
    short_video_frames: int | None = None,
) -> torch.Tensor:
    """``(T, C, H, W)`` frames -> ``(N, C, window_frames, H, W)`` windows (see :func:`window_starts`).

    A video without a window (``tail="last"``, shorter than one window) gives one window of
    its first ``short_video_frames`` frames, zero-padded to that many.
    """
    if frames.dim() != 4:
        raise ValueError(f"expected frames (T, C, H, W), got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise EmptyVideoError("the clip has zero frames: there is nothing to extract S3D features from")
    starts = window_starts(frames.shape[0], window_frames, stride, tail)
    if not starts:
        short = short_video_frames or window_frames
        return _cut_windows(frames[:short], [0], short)
    return _cut_windows(frames, starts, window_frames)


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
    """Video (path, bytes, decoded frames or a :class:`~vtzoo.video.VideoClip`) -> per-window S3D features.

    Decoding goes through :func:`vtzoo.video.load_video` at ``windowing.fps``, the frames of
    ``chunk_windows`` windows at a time (the frame grid is the same as one pass, and a long video
    never sits in memory whole). Frames already decoded (numpy ``(T, H, W, C)`` / torch
    ``(T, C, H, W)``, uint8 or float in [0, 1]) are taken as sampled at that rate already; they
    are resized and cropped like decoded ones. A ``VideoClip`` is taken as it is (decoded and
    preprocessed with :meth:`S3DWindowing.input_spec`). ``batch_size`` windows go through S3D at once.
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

    def _plan(self, num_frames: int) -> tuple[list[int], int, int]:
        """(window starts used, window length, windows the whole video has) for ``num_frames``."""
        w = self.windowing
        starts = w.starts(num_frames)
        if not starts:  # tail="last" and shorter than one window: one short window
            return [0], w.short_video_frames or w.window_frames, 1
        used = starts if w.max_windows is None else starts[: w.max_windows]
        return used, w.window_frames, len(starts)

    def _features(self, frames: torch.Tensor, starts: list[int], length: int) -> torch.Tensor:
        w = self.windowing
        windows = _cut_windows(frames, starts, length)
        with torch.inference_mode():
            return window_features(self.model, windows, self.batch_size, w.output, w.l2_normalize).float()

    def _from_frames(self, frames: torch.Tensor, preprocess: Any, record: dict[str, Any], duration: float | None = None):
        """Frames already sampled at the S3D rate (``preprocess`` None: already preprocessed)."""
        from vtzoo.video import load_video

        count = int(frames.shape[0])
        if count == 0:
            raise EmptyVideoError("the clip has zero frames: there is nothing to extract S3D features from")
        starts, length, full = self._plan(count)
        needed = min(count, starts[-1] + length)
        if preprocess is not None:
            clip = load_video(frames[:needed], num_frames=needed, preprocess=preprocess)
            frames, record = clip.frames, clip.provenance()
        else:
            frames, record = frames[:needed], _first(record, needed)
        return self._features(frames, starts, length), needed, full, duration or count / self.windowing.fps, record

    def _from_clip(self, clip: Any):
        """A clip decoded at the windowing rate holds ``round(span * fps)`` frames, as decoding its
        source here would (the same windows either way); other clips are taken as they are."""
        frames = clip.frames[clip.mask.bool()] if clip.mask is not None else clip.frames
        sampling, w = clip.sampling or {}, self.windowing
        if sampling.get("mode") != "fps" or not np.isclose(float(sampling.get("fps") or 0), w.fps):
            return self._from_frames(frames, None, clip.provenance())
        begin = float(sampling.get("start") or 0.0)
        span = min(float(sampling.get("end") or clip.duration), clip.duration) - begin
        count = max(1, min(frames.shape[0], w.frames_in(span)))
        return self._from_frames(frames[:count], None, clip.provenance(), duration=span)

    def _from_encoded(self, source: Any):
        """Decode the frames of ``chunk_windows`` windows at a time."""
        from vtzoo.video import load_video, probe_video

        w = self.windowing
        info = probe_video(source)
        total = w.frames_in(info.duration)
        if info.num_frames == 0 or total == 0:
            raise EmptyVideoError(f"video {_describe(source)} has no frame")
        starts, length, full = self._plan(total)
        pre, parts, record, decoded = self._preprocess(), [], {}, 0
        for first in range(0, len(starts), self.chunk_windows):
            group = starts[first : first + self.chunk_windows]
            begin, stop = group[0], min(group[-1] + length, total)
            clip = load_video(source, fps=w.fps, start=begin / w.fps, end=min(stop / w.fps, info.duration), preprocess=pre)
            # the frames these windows read (a frame sampled on the boundary would open one more)
            frames = clip.frames[clip.mask.bool()][: stop - begin]
            parts.append(self._features(frames, [s - begin for s in group], length))
            record = _extend(record, clip.provenance(), skip=max(0, decoded - begin), count=frames.shape[0])
            decoded = max(decoded, begin + frames.shape[0])
        return torch.cat(parts), decoded, full, info.duration, record

    def __call__(self, source: Any) -> S3DFeatures:
        from vtzoo.video import VideoClip

        w = self.windowing
        if isinstance(source, VideoClip):
            result = self._from_clip(source)
        elif _is_decoded(source):
            result = self._from_frames(source, self._preprocess(), {})
        else:
            result = self._from_encoded(source)
        feats, num_frames, full, duration, record = result
        truncated = w.max_windows is not None and full > w.max_windows
        if truncated and self.warn_truncation:
            warnings.warn(
                f"video {_describe(source)} has {full} windows of {w.window_frames / w.fps:g} s; only the "
                f"first {w.max_windows} are used (max_windows)",
                stacklevel=2,
            )
        extras = {"backend": record.get("backend"), "duration": duration, "windowing": asdict(w)}
        return S3DFeatures(features=feats, num_frames=num_frames, fps=w.fps, truncated=truncated, extras=extras,
                           duration=duration, provenance=record)  # fmt: skip


def _first(record: dict[str, Any], count: int) -> dict[str, Any]:
    """A clip's provenance record cut to its first ``count`` frames."""
    if not record:
        return {}
    return {**record, "indices": list(record.get("indices", []))[:count],
            "timestamps": list(record.get("timestamps", []))[:count]}  # fmt: skip


def _extend(record: dict[str, Any], chunk: dict[str, Any], skip: int, count: int) -> dict[str, Any]:
    """``record`` followed by a chunk's frames ``skip..count`` (frames decoded twice, for
    overlapping windows, are listed once)."""
    chunk = _first(chunk, count)
    if not record:
        return chunk
    merged = dict(record)
    merged["indices"] = record["indices"] + chunk["indices"][skip:]
    merged["timestamps"] = record["timestamps"] + chunk["timestamps"][skip:]
    merged["fallback"] = {**record.get("fallback", {}), **chunk.get("fallback", {})}
    return merged


def _is_decoded(source: Any) -> bool:
    return isinstance(source, (torch.Tensor, np.ndarray))


def _describe(source: Any) -> str:
    if isinstance(source, (str, bytes)) and len(source) < 200:
        return repr(source) if isinstance(source, str) else f"<{len(source)} bytes>"
    source_name = getattr(source, "source", None)
    if source_name is not None:
        return repr(source_name)
    shape = getattr(source, "shape", None)
    return f"<frames {tuple(shape)}>" if shape is not None else f"<{type(source).__name__}>"
