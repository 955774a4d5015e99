"""``load_video``: from a path, bytes or decoded frames to a model-ready clip with its provenance."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from vtzoo.video.arrays import ARRAY_LABEL, ArrayBackend, is_decoded_frames
from vtzoo.video.backends import VideoBackend, VideoInfo, backend_chain, describe_failure, open_backend
from vtzoo.video.errors import VideoDecodeError
from vtzoo.video.native_output import summarise
from vtzoo.video.preprocess import Preprocess
from vtzoo.video.sampling import (
    SamplingError,
    fps_indices,
    middle_indices,
    uniform_indices,
    window_range,
)

BYTES_LABEL = "<bytes>"
SAMPLING_RULES = ("uniform", "middle")


@dataclass
class VideoClip:
    """A sampled, preprocessed clip and everything needed to reproduce it.

    ``frames`` float32 (T, C, H, W); padded frames are zeros. ``mask`` int64 (T,), 1 = real frame.
    ``indices`` and ``timestamps`` describe the real frames (``mask.sum()`` of them, in order;
    a frame sampled twice appears twice). ``fps``/``duration``/``num_source_frames`` describe
    the source video (``fps`` is its average rate, not the sampling rate). ``backend`` is the
    decoder that produced the frames; ``fallback`` maps each backend tried before it to the
    reason it failed. ``rotation`` is the display rotation applied (counter-clockwise degrees:
    0, 90, 180 or 270), so the frames are upright whatever the backend.
    """

    frames: torch.Tensor
    mask: torch.Tensor
    indices: list[int]
    backend: str
    fps: float
    duration: float
    source: str
    timestamps: list[float] = field(default_factory=list)
    num_source_frames: int = 0
    sampling: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None
    fallback: dict[str, str] = field(default_factory=dict)
    rotation: int = 0
    decoder_messages: str = ""  # what the decoder reported while producing the frames (concealed errors)
    decoded_size: list[int] | None = None  # [height, width] the decoder scaled to (decode_at_size), else None

    def __len__(self) -> int:
        return self.frames.shape[0]

    def provenance(self) -> dict[str, Any]:
        """A JSON-ready record: replay with ``load_video(source, indices=..., backend=...)``."""
        return {
            "source": self.source,
            "backend": self.backend,
            "indices": list(self.indices),
            "timestamps": list(self.timestamps),
            "fps": self.fps,
            "duration": self.duration,
            "num_source_frames": self.num_source_frames,
            "sampling": dict(self.sampling),
            "preprocess": self.preprocess,
            "fallback": dict(self.fallback),
            "rotation": self.rotation,
            "decoder_messages": self.decoder_messages,
            "decoded_size": self.decoded_size,
        }


# ---------------------------------------------------------------------------------- sources ---
def _resolve_source(source: Any) -> tuple[str, "str | bytes | None"]:
    """(label, what a decoding backend opens); ``None`` for decoded frames."""
    if is_decoded_frames(source):
        return ARRAY_LABEL, None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise VideoDecodeError(BYTES_LABEL, "the bytes are empty")
        return BYTES_LABEL, data
    if hasattr(source, "read"):  # an open binary file or a BytesIO
        return _resolve_source(source.read())
    if isinstance(source, (str, os.PathLike)):
        path = str(os.fspath(source))
        if not os.path.exists(path):
            raise VideoDecodeError(path, "no such file")
        if not os.path.isfile(path):
            raise VideoDecodeError(path, "not a file")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(path, "the file is empty")
        return path, path
    raise TypeError(
        f"load_video takes a path, bytes, a binary file object or decoded frames (numpy/torch), got {type(source).__name__}"
    )


def _decode_with_fallback(
    label: str, data: "str | bytes", backend: str | None, work: "Any"
) -> tuple[Any, str, dict[str, str]]:
    """Run ``work(decoder)`` on each backend of the chain until one succeeds.

    A backend that fails to open, probe or read is recorded and the next one is tried;
    a sampling request the video cannot satisfy is not a backend failure and stops at once.
    """
    causes: dict[str, str] = {}
    for name in backend_chain(backend):
        decoder: VideoBackend | None = None
        try:
            decoder = open_backend(name, data, label)
            return work(decoder), name, causes
        except SamplingError as exc:
            raise VideoDecodeError(label, str(exc)) from exc
        except Exception as exc:  # noqa: BLE001  any backend failure -> try the next one
            causes[name] = describe_failure(exc)
        finally:
            if decoder is not None:
                try:
                    decoder.close()
                except Exception:  # noqa: BLE001  closing a broken decoder must not hide the cause
                    pass
    reason = "not a readable video (unsupported, truncated or corrupt?)"
    raise VideoDecodeError(label, reason, causes)


# ---------------------------------------------------------------------------------- sampling --
@dataclass(frozen=True)
class _Request:
    """What ``load_video`` was asked to sample; also the ``sampling`` provenance record."""

    num_frames: int | None
    fps: float | None
    max_frames: int | None
    indices: tuple[int, ...] | None
    sampling: str
    pad: bool
    start: float | None
    end: float | None

    def validate(self) -> None:
        given = [n for n, v in (("num_frames", self.num_frames), ("fps", self.fps), ("indices", self.indices)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of num_frames, fps or indices (got {given or 'none'})")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.max_frames is not None and (self.fps is None or self.max_frames < 1):
            raise ValueError("max_frames (>= 1) goes with fps sampling")
        if self.pad and self.fps is not None and self.max_frames is None:
            raise ValueError("pad=True with fps sampling needs max_frames (the length to pad to)")
        if self.sampling not in SAMPLING_RULES:
            raise ValueError(f"sampling must be one of {SAMPLING_RULES}, got {self.sampling!r}")
        if self.indices is not None and (self.start is not None or self.end is not None):
            raise ValueError("explicit indices and a start/end window do not combine")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"the window end ({self.end}) must be after its start ({self.start})")
        if self.start is not None and self.start < 0:
            raise ValueError(f"start must be >= 0 seconds, got {self.start}")

    def choose(self, info: VideoInfo, timestamps: np.ndarray) -> list[int]:
        """The frame indices to decode, in clip order (see :mod:`.sampling` for the rules)."""
        if self.indices is not None:
            bad = [i for i in self.indices if not 0 <= i < info.num_frames]
            if bad or not self.indices:
                raise SamplingError(f"frame indices {bad[:5] or '[]'} are outside 0..{info.num_frames - 1}")
            return list(self.indices)
        if self.fps is not None:
            return fps_indices(timestamps, info.duration, self.fps, self.start, self.end, self.max_frames)
        first, last = window_range(timestamps, self.start, self.end)
        if self.sampling == "middle":
            return middle_indices(first, last, self.num_frames)
        return uniform_indices(first, last, self.num_frames, pad=self.pad)

    def padded_length(self, real: int) -> int:
        if not self.pad:
            return real
        return max(real, self.max_frames if self.fps is not None else (self.num_frames or real))

    def record(self) -> dict[str, Any]:
        if self.indices is not None:
            return {"mode": "indices"}
        if self.fps is not None:
            record: dict[str, Any] = {"mode": "fps", "fps": self.fps, "max_frames": self.max_frames}
        else:
            record = {"mode": self.sampling, "num_frames": self.num_frames}
        record.update({"start": self.start, "end": self.end, "pad": self.pad})
        return record


# ---------------------------------------------------------------------------------- public ----
def load_video(
    source: Any,
    num_frames: int | None = None,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    indices: Sequence[int] | None = None,
    start: float | None = None,
    end: float | None = None,
    sampling: str = "uniform",
    pad: bool = False,
    preprocess: Preprocess | None = None,
    backend: str | None = None,
    source_fps: float | None = None,
    decode_at_size: bool = False,
) -> VideoClip:
    """Decode the sampled frames of a video and preprocess them.

    Args:
        source: a path, the bytes of a video file (or a binary file object), or decoded frames
            (numpy (T, H, W, C), torch (T, C, H, W) or (T, H, W, C); uint8 or float in [0, 1]).
        num_frames: sample this many frames over the window with the ``sampling`` rule.
        fps: instead, sample at this rate (times ``start + k / fps``, nearest frame each).
        max_frames: with ``fps``: thin a longer result uniformly to this many frames.
        indices: instead, exactly these frame indices (replays a recorded clip).
        start, end: window in seconds, ``start <= t < end``.
        sampling: ``"uniform"`` (linspace, CLIP4Clip) or ``"middle"`` (segment middles).
        pad: pad with zero frames (mask 0) to ``num_frames`` / ``max_frames`` when the window
            has fewer frames, instead of repeating frames (uniform) or returning fewer.
        preprocess: resize / crop / normalise; ``None`` gives float frames in [0, 1].
        backend: ``"auto"`` (decord, then PyAV), ``"decord"``, ``"pyav"``; default from the
            ``VTZOO_VIDEO_BACKEND`` environment variable, else ``"auto"``.
        source_fps: frame rate of decoded-frame input, needed for ``fps`` / ``start`` / ``end`` there.
        decode_at_size: let the decoder scale each frame to ``preprocess``'s first resize (FFmpeg's
            bicubic scaler, while converting from YUV) instead of producing full-size RGB frames
            that are resized after. Much cheaper for large videos (a 4K frame is 25 MB of RGB); the
            pixels differ slightly from the originals' resampling, so it is off by default
            (docs/video.md has the measured difference). The size is in the provenance.

    A :class:`VideoClip` (e.g. from a pipeline's ``video.decode`` step) is returned as it is:
    it was already sampled and preprocessed, with its settings recorded in its provenance.

    Raises:
        VideoDecodeError: the source cannot be read (naming it, and each backend's reason) or
            the window holds no frame.
        ValueError: contradictory arguments.
    """
    if isinstance(source, VideoClip):
        return source
    request = _Request(
        num_frames=None if num_frames is None else int(num_frames),
        fps=None if fps is None else float(fps),
        max_frames=None if max_frames is None else int(max_frames),
        indices=None if indices is None else tuple(int(i) for i in indices),
        sampling=sampling,
        pad=bool(pad),
        start=start,
        end=end,
    )
    request.validate()
    label, data = _resolve_source(source)

    def sample_and_read(decoder: VideoBackend) -> tuple[VideoInfo, np.ndarray, list[int], torch.Tensor, str]:
        info = decoder.probe()
        timestamps = decoder.timestamps()
        chosen = request.choose(info, timestamps)
        size = _decoder_size(decoder, info, preprocess) if decode_at_size else None
        frames = decoder.read(chosen) if size is None else decoder.read(chosen, size=size)
        return info, timestamps, chosen, frames, summarise(getattr(decoder, "decoder_messages", []))

    if data is None:
        if (fps is not None or start is not None or end is not None) and not source_fps:
            raise ValueError("sampling decoded frames by time (fps, start, end) needs source_fps")
        decoder = ArrayBackend(source, source_fps)
        try:
            info, timestamps, chosen, raw, said = sample_and_read(decoder)
        except SamplingError as exc:
            raise VideoDecodeError(label, str(exc)) from exc
        used, fallback = decoder.name, {}
    else:
        (info, timestamps, chosen, raw, said), used, fallback = _decode_with_fallback(label, data, backend, sample_and_read)

    frames = (preprocess or Preprocess())(raw)
    real = frames.shape[0]
    length = request.padded_length(real)
    mask = torch.zeros(length, dtype=torch.int64)
    mask[:real] = 1
    if length > real:  # padding frames are zeros (after normalisation), as the originals' loaders leave them
        frames = torch.cat([frames, frames.new_zeros((length - real, *frames.shape[1:]))])
    return VideoClip(
        frames=frames,
        mask=mask,
        indices=chosen,
        backend=used,
        fps=info.fps,
        duration=info.duration,
        source=label,
        timestamps=[round(float(timestamps[i]), 6) for i in chosen],
        num_source_frames=info.num_frames,
        sampling=request.record(),
        preprocess=None if preprocess is None else dataclasses.asdict(preprocess),
        fallback=fallback,
        rotation=info.rotation,
        decoder_messages=said,
        decoded_size=list(raw.shape[-2:]) if tuple(raw.shape[-2:]) != (info.height, info.width) else None,
    )


def _decoder_size(decoder: VideoBackend, info: VideoInfo, preprocess: Preprocess | None) -> tuple[int, int] | None:
    """The frame size to ask ``decoder`` for under ``decode_at_size`` (None: the stored size)."""
    if preprocess is None or not getattr(decoder, "scales_at_decode", False):
        return None
    return preprocess.decode_size(info.height, info.width)


def probe_video(source: Any, *, backend: str | None = None, source_fps: float | None = None) -> VideoInfo:
    """Frame count, fps, duration and size of a video, decoding at most one frame."""
    label, data = _resolve_source(source)
    if data is None:
        return ArrayBackend(source, source_fps).probe()
    info, _, _ = _decode_with_fallback(label, data, backend, lambda decoder: decoder.probe())
    return info


def frame_times(source: Any, *, backend: str | None = None) -> tuple[np.ndarray, float]:
    """Presentation time (seconds from the first frame) of every frame, and the duration."""
    label, data = _resolve_source(source)
    if data is None:
        raise ValueError("frame_times needs a video file or its bytes")
    (timestamps, info), _, _ = _decode_with_fallback(
        label, data, backend, lambda decoder: (decoder.timestamps(), decoder.probe())
    )
    return timestamps, info.duration


def stack_clips(clips: Sequence[VideoClip], pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch clips: frames (B, T, C, H, W) and mask (B, T), zero-padded to the longest clip.

    ``pad_to`` pads every clip to exactly that many frames (a longer clip is an error).
    """
    if not clips:
        raise ValueError("stack_clips needs at least one clip")
    shapes = {tuple(clip.frames.shape[1:]) for clip in clips}
    if len(shapes) != 1:
        raise ValueError(f"clips differ in frame shape (C, H, W): {sorted(shapes)}; preprocess them to one size")
    longest = max(len(clip) for clip in clips)
    length = longest if pad_to is None else int(pad_to)
    if longest > length:
        raise ValueError(f"a clip has {longest} frames, more than pad_to={length}")
    frames = clips[0].frames.new_zeros((len(clips), length, *clips[0].frames.shape[1:]))
    mask = torch.zeros((len(clips), length), dtype=torch.int64)
    for row, clip in enumerate(clips):
        frames[row, : len(clip)] = clip.frames
        mask[row, : len(clip)] = clip.mask
    return frames, mask


def sampling_from_card(preprocessing: Mapping[str, Any] | None) -> dict[str, Any]:
    """``load_video`` keyword arguments from a card's preprocessing (``frames``, ``fps``, ``sampling``).

    With ``fps``: sample at that rate, at most ``frames`` frames, padded to ``frames`` (the
    CLIP4Clip protocol). Without: ``frames`` frames with the ``sampling`` rule (default uniform).
    """
    prep = dict(preprocessing or {})
    frames = prep.get("frames")
    rule = prep.get("sampling") or "uniform"
    if prep.get("fps") and rule not in ("middle",):
        kwargs: dict[str, Any] = {"fps": float(prep["fps"])}
        if frames:
            kwargs.update(max_frames=int(frames), pad=True)
        return kwargs
    if not frames:
        raise ValueError("the card's preprocessing gives neither frames nor fps")
    return {"num_frames": int(frames), "sampling": rule if rule in SAMPLING_RULES else "uniform"}
