"""Per-window S3D features of a whole video: the one windowing VideoCLIP, COOT and ``s3d`` share.

A video is decoded at ``fps``, its shorter side resized and centre-cropped (RGB / 255, no
mean/std), cut into windows of ``window_frames`` frames that start every ``stride`` frames, and
every window goes through S3D. :class:`S3DWindowing` holds the rules of both originals:

* MMPT's ``video_feature_extractor --type s3d`` (VideoCLIP's features; the defaults): 30 fps,
  224 px, round(duration x 30) frames, 30-frame windows without overlap (one per second), the
  last one zero-padded, each window's 512-d ``video_embedding`` L2-normalised.
* COOT's ``extract_100m_features.py`` (:meth:`S3DWindowing.coot`): 16 fps, 256 px, every frame
  at t = k / 16 < duration, 32-frame windows every 16 frames (one per second), a window that would
  run past the end replaced by the LAST 32 frames (so the tail feature can repeat), a video
  shorter than one window giving one feature of its first 16 frames; not normalised.

Public API (used by the ``s3d`` operator and by the families that run S3D on raw video)::

    s3d, _ = build_s3d(weights, seed=seed)                     # the one loading path
    extractor = S3DFeatureExtractor(s3d, S3DWindowing.coot())  # decode + window + features
    result = extractor("video.mp4")                            # S3DFeatures(features, ...)
    windows = frames_to_windows(frames, windowing)             # (T, 3, H, W) -> (N, 3, L, H, W)
    feats = window_features(s3d, windows)                      # (N, 512)

An operator takes the windowing fields as options by mixing :class:`S3DWindowingOptions` into its
options class (``vtzoo.create("s3d", window_frames=16, output="mixed_5c")``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vtzoo.backbones.s3d.model import S3D
from vtzoo.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.registry.weights import ResolvedWeights

S3D_CARD = "s3d/howto100m-milnce"
OUTPUTS = ("video_embedding", "mixed_5c")
TAILS = ("pad", "last")
FRAME_COUNTS = ("round", "ceil")


class EmptyVideoError(InputError):
    """A video (or clip) that has no frame to extract a feature from."""


@dataclass
class S3DWindowing:
    """How a video becomes S3D windows. Defaults = MMPT's extractor (VideoCLIP's features)."""

    fps: float = 30.0  # decoding rate
    window_frames: int = 30  # frames per window: 30 at 30 fps = one feature per second
    stride: int | None = None  # frames from one window's start to the next (None: window_frames)
    # a window that runs past the last frame: "pad" zero-pads it (MMPT); "last" takes the last
    # window_frames frames instead (COOT)
    tail: Literal["pad", "last"] = "pad"
    # tail "last": a video shorter than one window gives one feature of its first
    # short_video_frames frames, zero-padded to that many (None: zero-padded to a window)
    short_video_frames: int | None = None
    # frames of a d-second video at fps: "round" = round(d * fps) (MMPT); "ceil" = every
    # t = k / fps < d (COOT)
    frame_count: Literal["round", "ceil"] = "round"
    resize: int = 224  # shorter side
    crop: int = 224  # centre crop
    interpolation: str = "bicubic"  # ffmpeg's default scaler in the original extractors
    output: Literal["video_embedding", "mixed_5c"] = "video_embedding"
    l2_normalize: bool = True  # MMPT's default (--l2_normalize 1)
    max_windows: int | None = None  # decode only the first windows (None = the whole video)

    def __post_init__(self) -> None:
        for name, value, known in (("tail", self.tail, TAILS), ("output", self.output, OUTPUTS),
                                   ("frame_count", self.frame_count, FRAME_COUNTS)):  # fmt: skip
            if value not in known:
                raise ConfigError(f"S3D windowing: {name} must be one of {', '.join(known)}, got {value!r}")
        for name in ("window_frames", "stride", "short_video_frames", "max_windows"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"S3D windowing: {name} must be a positive integer, got {value!r}")
        if not self.fps > 0:
            raise ConfigError(f"S3D windowing: fps must be > 0, got {self.fps!r}")

    @classmethod
    def coot(cls, **changes: Any) -> "S3DWindowing":
        """COOT's YouCook2 extraction (``extract_100m_features.py``), with ``changes``."""
        values = dict(fps=16.0, window_frames=32, stride=16, tail="last", short_video_frames=16, frame_count="round",
                      resize=256, crop=256, l2_normalize=False)  # fmt: skip
        return cls(**{**values, **changes})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, base: "S3DWindowing | None" = None) -> "S3DWindowing":
        """``base`` (default: MMPT's) with the windowing fields found in ``values`` (e.g. a card's
        ``preprocessing``, which also holds other keys)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return dataclasses.replace(base or cls(), **{k: v for k, v in (values or {}).items() if k in names})

    @property
    def step(self) -> int:
        return self.stride or self.window_frames

    @property
    def features_per_second(self) -> float:
        return self.fps / self.step

    def preprocessing(self) -> dict[str, Any]:
        """The frame preprocessing (card schema) for :mod:`vtzoo.video`: no mean/std, S3D takes
        RGB in [0, 1] (uint8 / 255)."""
        return {"resize": self.resize, "crop": self.crop, "interpolation": self.interpolation}

    def input_spec(self):
        """The :class:`~vtzoo.video.VideoInputSpec` that decodes a video for these windows."""
        from vtzoo.video import Preprocess, VideoInputSpec

        return VideoInputSpec(sampling={"fps": self.fps}, preprocess=Preprocess.from_card(self.preprocessing()))

    def frames_in(self, duration: float | None) -> int:
        """How many frames a video of ``duration`` seconds has at ``fps`` (see ``frame_count``)."""
        if not duration or not np.isfinite(duration):
            return 0
        if self.frame_count == "round":
            return int(round(duration * self.fps))
        from vtzoo.video.sampling import fps_times

        return len(fps_times(0.0, duration, self.fps))

    def starts(self, num_frames: int) -> list[int]:
        """Start frame of every window of a ``num_frames``-frame video (before ``max_windows``);
        empty when the video is shorter than one window and ``tail`` is "last"."""
        pointers = range(0, num_frames, self.step)
        if self.tail == "pad":
            return list(pointers)
        last = num_frames - self.window_frames
        # the original's loop: a window past the end becomes the last one, once per pointer
        return [p if p <= last else last for p in pointers if p <= last or last > 0]


class _WindowingOverrides:
    def windowing(self, card_values: Mapping[str, Any] | None, base: S3DWindowing | None = None,
                  **fixed: Any) -> S3DWindowing:
        """``base`` updated by the card's ``preprocessing`` (``card_values``), then by these options,
        then by ``fixed`` (what the model itself dictates, e.g. VideoCLIP's ``max_windows``)."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(S3DWindowing) if getattr(self, f.name) is not None}
        return S3DWindowing.from_dict({**dict(card_values or {}), **given, **fixed}, base)


# Mixed into an operator's options class (``class Options(S3DWindowingOptions, OperatorOptions)``):
# every S3DWindowing field as an option, None meaning "the card's value".
S3DWindowingOptions = dataclasses.make_dataclass(
    "S3DWindowingOptions",
    [(f.name, f"{f.type} | None", field(default=None)) for f in dataclasses.fields(S3DWindowing)]
    + [("s3d_batch_size", "int", field(default=8))],  # windows per S3D forward pass
    bases=(_WindowingOverrides,),
    namespace={"__module__": __name__},
)


def window_starts(num_frames: int, window_frames: int = 30, stride: int | None = None, tail: str = "pad") -> list[int]:
    """First frame of each window of a ``num_frames`` clip (see :meth:`S3DWindowing.starts`)."""
    return S3DWindowing(window_frames=window_frames, stride=stride, tail=tail).starts(num_frames)


# COOT's extractor (extract_100m_features.py of coot-videotext): its YouCook2 S3D features
COOT_WINDOWING = S3DWindowing.coot()


@dataclass
class S3DFeatures:
    """Features of one video: ``features`` (N, D), one row per window, with provenance."""

    features: torch.Tensor
    num_frames: int  # real frames the windows cover (before any padding)
    fps: float
    duration: float = 0.0  # seconds of the source (frames / fps for decoded frames)
    truncated: bool = False  # the video had more windows than ``max_windows``
    provenance: dict[str, Any] = field(default_factory=dict)  # source, backend, indices, ... of the decoded frames
    extras: dict[str, Any] = field(default_factory=dict)


def _cut(frames: torch.Tensor, starts: Sequence[int], length: int) -> torch.Tensor:
    """``(T, C, H, W)`` -> ``(len(starts), C, length, H, W)``: ``frames[s : s + length]`` for each
    start, zero-padded at the end where the frames run out."""
    windows = []
    for s in starts:
        piece = frames[s : s + length]
        if piece.shape[0] < length:
            piece = torch.cat([piece, piece.new_zeros((length - piece.shape[0], *frames.shape[1:]))])
        windows.append(piece)
    return torch.stack(windows).transpose(1, 2)


def frames_to_windows(frames: torch.Tensor, windowing: S3DWindowing | None = None) -> torch.Tensor:
    """``(T, C, H, W)`` frames (at ``windowing.fps``) -> ``(N, C, L, H, W)`` windows, by the
    windowing's rule (``max_windows`` included). With MMPT's rule N = ceil(T / 30) and the tail is
    zero-padded to a whole window (so the last feature sees black frames)."""
    w = windowing or S3DWindowing()
    if frames.dim() != 4:
        raise InputError(f"expected frames (T, C, H, W), got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise EmptyVideoError("the clip has zero frames: there is nothing to extract S3D features from")
    starts = w.starts(frames.shape[0])[: w.max_windows]
    if not starts:  # shorter than one window, tail "last"
        return _cut(frames, [0], w.short_video_frames or w.window_frames)
    return _cut(frames, starts, w.window_frames)


def window_features(
    model: S3D,
    windows: torch.Tensor,
    batch_size: int = 8,
    output: str = "video_embedding",
    l2_normalize: bool = True,
) -> torch.Tensor:
    """Run S3D on ``(N, 3, T, H, W)`` windows in batches -> ``(N, D)`` features."""
    if windows.dim() != 5 or windows.shape[1] != 3:
        raise InputError(f"expected windows (N, 3, T, H, W), got shape {tuple(windows.shape)}")
    if windows.shape[0] == 0:
        raise EmptyVideoError("no window to extract S3D features from")
    param = next(model.parameters())
    parts = []
    for start in range(0, windows.shape[0], max(1, batch_size)):
        batch = windows[start : start + batch_size].to(device=param.device, dtype=param.dtype)
        parts.append(getattr(model(batch), output))
    features = torch.cat(parts).float()  # norms in float32 whatever precision S3D ran in
    return F.normalize(features, dim=-1) if l2_normalize else features


def build_s3d(weights: Any = None, *, seed: int = 0, device: str | torch.device = "cpu") -> tuple[S3D, "ResolvedWeights"]:
    """The HowTo100M S3D of the ``s3d/howto100m-milnce`` card through the one loading path:
    ``weights`` is what ``vtzoo.create`` takes (``"random"`` is seeded by ``seed``; the release
    ``s3d_howto100m.pth``, its text branch dropped; a vtzoo folder). For families that run S3D on
    raw video beside their own model (build it in ``setup()`` from ``options.seed`` + an offset)."""
    from vtzoo.registry.cards import get_card
    from vtzoo.registry.weights import build_model

    model, resolved = build_model(S3D, get_card(S3D_CARD), weights, seed=seed)
    return model.to(device).eval(), resolved


class S3DFeatureExtractor:
    """Video (path, bytes, a decoded :class:`~vtzoo.video.VideoClip`, or decoded frames) ->
    per-window S3D features.

    Files are decoded through :func:`vtzoo.video.load_video` at ``windowing.fps``,
    ``chunk_windows`` windows at a time (long videos never sit in memory whole; the frame grid
    is the same as one pass). Frames already decoded (numpy ``(T, H, W, C)`` / torch
    ``(T, C, H, W)``, uint8 or float in [0, 1]) are taken as sampled at that rate already and
    resized and cropped like decoded ones; a ``VideoClip`` is taken as sampled and preprocessed
    (its padded frames dropped).
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

    @property
    def preprocess(self):
        from vtzoo.video import Preprocess

        return Preprocess.from_card(self.windowing.preprocessing())

    def features_of(self, frames: torch.Tensor) -> torch.Tensor:
        """Preprocessed frames (T, 3, H, W) at ``fps`` -> (N, D) features of their windows."""
        w = self.windowing
        with torch.inference_mode():
            return window_features(self.model, frames_to_windows(frames, w), self.batch_size, w.output, w.l2_normalize)

    def _covered(self, num_frames: int, source: Any = None) -> tuple[int, int]:
        """(frames the used windows cover, windows of the whole video) of ``num_frames`` frames."""
        if num_frames == 0:
            raise EmptyVideoError("zero frames: there is nothing to extract S3D features from", source)
        w = self.windowing
        starts = w.starts(num_frames)
        used = starts[: w.max_windows]
        if not used:  # shorter than one window, tail "last"
            return min(num_frames, w.short_video_frames or w.window_frames), 1
        return min(num_frames, max(used) + w.window_frames), len(starts)

    def _in_memory(self, frames: torch.Tensor, count: int, duration: float, provenance: dict[str, Any]) -> S3DFeatures:
        """Features of the first frames of a ``count``-frame video (``frames``: at least the ones
        its used windows cover)."""
        covered, full = self._covered(count, provenance.get("source"))
        return self._result(self.features_of(frames[:covered]), covered, full, duration, provenance)

    def _from_encoded(self, source: Any) -> S3DFeatures:
        """Decode the frames of ``chunk_windows`` windows at a time."""
        from vtzoo.video import load_video, probe_video

        w = self.windowing
        info = probe_video(source)
        total = w.frames_in(info.duration) if info.num_frames else 0
        covered, full = self._covered(total, _describe(source))
        used = w.starts(total)[: w.max_windows]
        if not used:  # shorter than one window (tail "last"): every frame it has
            clip = load_video(source, fps=w.fps, preprocess=self.preprocess)
            frames = clip.frames[clip.mask.bool()][:total]
            return self._in_memory(frames, frames.shape[0], info.duration, clip.provenance())
        parts, grid, first_clip = [], {}, None
        for i in range(0, len(used), self.chunk_windows):
            group = used[i : i + self.chunk_windows]
            first, stop = group[0], min(max(group) + w.window_frames, total)
            clip = load_video(source, fps=w.fps, start=first / w.fps, end=min(stop / w.fps, info.duration),
                              preprocess=self.preprocess)  # fmt: skip
            first_clip = first_clip or clip
            frames = clip.frames[clip.mask.bool()][: stop - first]
            grid.update(zip(range(first, first + frames.shape[0]), zip(clip.indices, clip.timestamps)))
            if frames.shape[0] < stop - first:  # rounding at the very end: repeat the last frame
                frames = torch.cat([frames, frames[-1:].expand(stop - first - frames.shape[0], -1, -1, -1)])
            windows = _cut(frames, [s - first for s in group], w.window_frames)
            with torch.inference_mode():
                parts.append(window_features(self.model, windows, self.batch_size, w.output, w.l2_normalize))
        provenance = first_clip.provenance()
        provenance.update(indices=[grid[k][0] for k in sorted(grid)], timestamps=[grid[k][1] for k in sorted(grid)])
        provenance.pop("sampling", None)  # per chunk; the windowing (in extras) says how it was sampled
        return self._result(torch.cat(parts), covered, full, info.duration, provenance)

    def _result(self, feats: torch.Tensor, num_frames: int, full: int, duration: float,
                provenance: dict[str, Any]) -> S3DFeatures:  # fmt: skip
        w = self.windowing
        truncated = w.max_windows is not None and full > w.max_windows
        if truncated and self.warn_truncation:
            warnings.warn(
                f"video {provenance.get('source', '<video>')} has {full} windows of {w.window_frames / w.fps:g} s; "
                f"only the first {w.max_windows} are used (max_windows)",
                stacklevel=3,
            )
        return S3DFeatures(features=feats, num_frames=num_frames, fps=w.fps, duration=duration, truncated=truncated,
                           provenance=provenance, extras={"windowing": asdict(w)})  # fmt: skip

    def __call__(self, source: Any) -> S3DFeatures:
        from vtzoo.video import VideoClip

        fps = self.windowing.fps
        if isinstance(source, VideoClip):
            frames = source.frames[source.mask.bool()]
            # a whole video sampled at fps has one frame more than the extractors' frame count
            # when its duration is not a whole number of frames: count as a file would
            count = min(frames.shape[0], self.windowing.frames_in(source.duration)) if source.duration else frames.shape[0]
            return self._in_memory(frames[:count], count, source.duration or count / fps, source.provenance())
        if isinstance(source, (torch.Tensor, np.ndarray)):
            from vtzoo.video import load_video

            count = int(source.shape[0])
            covered, _ = self._covered(count)
            clip = load_video(source[:covered], num_frames=covered, preprocess=self.preprocess)
            return self._in_memory(clip.frames, count, count / fps, clip.provenance())
        return self._from_encoded(source)


def _describe(source: Any) -> str:
    if isinstance(source, str) and len(source) < 200:
        return source
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


__all__ = [
    "EmptyVideoError",
    "S3DFeatureExtractor",
    "S3DFeatures",
    "S3DWindowing",
    "S3DWindowingOptions",
    "build_s3d",
    "frames_to_windows",
    "window_features",
]
