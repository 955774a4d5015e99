"""Decoding backends behind one small interface, and the registry that picks them.

A backend opens one encoded video (a path or the bytes of a file) and answers three questions:
what the video is (:meth:`VideoBackend.probe`), when each frame is shown
(:meth:`VideoBackend.timestamps`), and what given frames look like (:meth:`VideoBackend.read`).
Frame index ``i`` always means the ``i``-th frame in presentation order, so indices recorded
with one backend replay on the other.

Built in: ``decord`` (tried first: fast, accurate random access) and ``pyav`` (the fallback,
reads whatever FFmpeg can demux, including streams decord rejects such as raw H.264 or MPEG-TS).
More can be added with :func:`register_backend`.
"""

from __future__ import annotations

import io
import os
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from vtzoo.video.errors import VideoDecodeError
from vtzoo.video.native_output import capture as capture_native_output
from vtzoo.video.orientation import probe_orientation, turn, upright_rgb

BACKEND_ENV_VAR = "VTZOO_VIDEO_BACKEND"


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reports, without decoding any frame."""

    num_frames: int
    fps: float  # average frame rate of the stream
    duration: float  # seconds: start of the last frame + one average frame interval
    width: int  # of the upright frames (display rotation applied)
    height: int
    backend: str
    rotation: int = 0  # counter-clockwise degrees the backend turns the stored frames


@runtime_checkable
class VideoBackend(Protocol):
    """One opened video. Implementations decode only the frames :meth:`read` is asked for."""

    name: str
    rotation: int  # counter-clockwise degrees applied to the stored frames (display matrix)

    def probe(self) -> VideoInfo:
        """Stream facts (frame count, fps, duration, size); decodes nothing."""

    def timestamps(self) -> np.ndarray:
        """float64 (num_frames,): presentation time of each frame in seconds, the first at 0."""

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 (len(indices), 3, H, W) upright RGB frames in the order of ``indices`` (repeats allowed).

        A backend whose ``scales_at_decode`` is true also takes ``size=(height, width)``: the
        upright frames scaled by the decoder itself, so that a full-resolution RGB frame never
        exists (see ``load_video(decode_at_size=True)``).
        """

    def close(self) -> None:
        """Release the file / decoder."""


BackendFactory = Callable[["str | bytes", str], VideoBackend]

_BACKENDS: dict[str, BackendFactory] = {}
_AUTO_ORDER: list[str] = []


def register_backend(name: str, factory: BackendFactory, *, auto: bool = True) -> None:
    """Make ``factory(source, label)`` available as ``backend=name``.

    ``source`` is a path or the bytes of a file, ``label`` the name used in error messages.
    With ``auto`` the backend joins the end of the ``backend="auto"`` fallback chain.
    """
    _BACKENDS[name] = factory
    if auto and name not in _AUTO_ORDER:
        _AUTO_ORDER.append(name)


def available_backends() -> list[str]:
    """Registered backend names, in ``"auto"`` order first."""
    return list(_AUTO_ORDER) + [name for name in _BACKENDS if name not in _AUTO_ORDER]


def backend_chain(choice: str | None) -> list[str]:
    """The backends to try, in order, for ``backend=choice``.

    ``None`` reads the ``VTZOO_VIDEO_BACKEND`` environment variable (default ``"auto"``).
    ``"auto"`` is the fallback chain (decord, then PyAV); a name means that backend only.
    """
    if choice is None:
        choice = os.environ.get(BACKEND_ENV_VAR, "").strip() or "auto"
    if choice == "auto":
        return list(_AUTO_ORDER)
    if choice not in _BACKENDS:
        raise ValueError(f"unknown video backend {choice!r}; choose 'auto' or one of {available_backends()}")
    return [choice]


def open_backend(name: str, source: "str | bytes", label: str) -> VideoBackend:
    return _BACKENDS[name](source, label)


def describe_failure(exc: BaseException) -> str:
    """A one-line reason from a backend exception (decord's carry log prefixes and stack traces)."""
    if isinstance(exc, ImportError):
        return f"not installed ({exc})"
    if isinstance(exc, VideoDecodeError):
        return exc.reason
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"^(\[[\d:]+\]\s*\S+:\d+:\s*)+", "", text)  # "[06:17:17] src/x.cc:486: " prefixes
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _file_like(source: "str | bytes") -> "str | io.BytesIO":
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source


def _hwc_to_tchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def _gather(unique: Sequence[int], decoded: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Rows of ``decoded`` (one per ``unique`` index) in the order, with the repeats, of ``indices``."""
    position = {index: row for row, index in enumerate(unique)}
    return decoded[[position[int(i)] for i in indices]]


def _check_range(indices: Sequence[int], num_frames: int, label: str) -> list[int]:
    unique = sorted({int(i) for i in indices})
    if unique and (unique[0] < 0 or unique[-1] >= num_frames):
        raise IndexError(f"frame index out of range for {label} ({num_frames} frames): {unique[0]}..{unique[-1]}")
    return unique


# ---------------------------------------------------------------------------------- decord ----
def sniff_container(source: "str | bytes") -> str:
    """The container family from the first bytes: "mp4", "matroska", "flv" or "other"."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:12])
    else:
        with open(source, "rb") as handle:
            head = handle.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"  # ISO base media: .mp4 .mov .m4v .3gp
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # .mkv .webm
    if head[:3] == b"FLV":
        return "flv"
    return "other"


# Containers whose frame-accurate seeking in decord 0.6 was checked against a full decode.
# decord silently returns wrong frames for MPEG-TS and for AVI with B-frames (it seeks on
# decode timestamps), and rejects raw streams: those go to PyAV.
DECORD_CONTAINERS = frozenset({"mp4", "matroska", "flv"})
# Containers whose display rotation decord 0.6 applies itself (its FFmpeg reads the MP4 matrix);
# frames from the others come out as stored and are turned here.
DECORD_ROTATES = frozenset({"mp4"})


class DecordBackend:
    """decord's ``VideoReader``: builds a key-frame index on open, ``get_batch`` seeks exactly.

    Used only for the containers in :data:`DECORD_CONTAINERS`; anything else is declined so
    that ``"auto"`` falls back to PyAV instead of returning misplaced frames.
    """

    name = "decord"
    scales_at_decode = True

    def __init__(self, source: "str | bytes", label: str):
        import decord  # ImportError -> "not installed" in the fallback record

        self.label = label
        self._source = source
        self._scaled: dict[tuple[int, int], object] = {}  # readers that decode at a given size
        container = sniff_container(source)
        if container not in DECORD_CONTAINERS:
            raise VideoDecodeError(label, "decord seeks unreliably in this container (not MP4/MOV, Matroska/WebM or FLV)")
        # what decord and its FFmpeg print about this file, from opening to closing (decord's
        # decoding thread may print after a call returns)
        self._capture = capture_native_output(label)
        self._reader = None
        try:
            self._reader = self._native(decord.VideoReader, _file_like(source), ctx=decord.cpu(0))
            self._num_frames = self._native(len, self._reader)
            if self._num_frames <= 0:
                raise VideoDecodeError(label, "the video stream has no frames")
            # decord exposes neither the frame size nor the display matrix: PyAV reads both
            self._orientation = probe_orientation(source, label)
        except BaseException:
            self.close()
            raise
        self.rotation = self._orientation.rotation
        self._turn = 0 if container in DECORD_ROTATES else self.rotation

    def probe(self) -> VideoInfo:
        fps = float(self._native(self._reader.get_avg_fps))
        width, height = self._orientation.width, self._orientation.height
        return VideoInfo(self._num_frames, fps, _duration(self.timestamps(), fps), width, height, self.name, self.rotation)

    def timestamps(self) -> np.ndarray:
        stamps = self._native(self._reader.get_frame_timestamp, np.arange(self._num_frames))
        starts = np.asarray(stamps, dtype=np.float64)[:, 0]
        return starts - starts[0]

    def read(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> torch.Tensor:
        unique = _check_range(indices, self._num_frames, self.label)
        reader, (height, width) = self._reader_for(size)
        decoded = turn(self._native(reader.get_batch, unique).asnumpy(), self._turn, axes=(1, 2))
        expected = (len(unique), height, width, 3)
        if decoded.shape != expected:  # decord 0.6 garbles some frame widths instead of failing
            raise VideoDecodeError(self.label, f"decord returned frames of shape {decoded.shape}, expected {expected}")
        return _hwc_to_tchw(_gather(unique, decoded, indices))

    def _reader_for(self, size: tuple[int, int] | None) -> tuple[object, tuple[int, int]]:
        """The reader that produces frames of ``size`` and that size (the stored one by default).

        decord scales inside its FFmpeg filter graph when a reader is opened with a width and
        height. A rotated video keeps the full-size reader: which axes decord 0.6 scales before
        it turns a frame is not documented, and a wrong guess would distort the picture.
        """
        native = (self._orientation.height, self._orientation.width)
        if size is None or tuple(size) == native or self.rotation:
            return self._reader, native
        if size not in self._scaled:
            import decord

            height, width = size
            self._scaled[size] = self._native(decord.VideoReader, _file_like(self._source), ctx=decord.cpu(0),
                                              width=width, height=height)
        return self._scaled[size], tuple(size)

    @property
    def decoder_messages(self) -> list[str]:
        """What decord's FFmpeg printed about this file so far (concealed errors, ...)."""
        return self._capture.messages()

    def _native(self, call: Callable, *args, **kwargs):
        """A decord call; its failure's reason includes what the decoder printed."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  re-raised as the file's decode error
            reason = describe_failure(exc)
        said = self._capture.summary()
        raise VideoDecodeError(self.label, reason + (f" (decoder: {said})" if said else ""))

    def close(self) -> None:
        # dropping the reader stops decord's decoding thread, which may still print: captured too
        self._reader = None
        self._scaled = {}
        self._capture.close()


# ------------------------------------------------------------------------------------ PyAV ----
def _frame_to_rgb(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """Convert one decoded frame to upright (H, W, 3) uint8 RGB, scaled by FFmpeg to ``size``
    (upright height, width) when given. Only frames that are kept get here."""
    return upright_rgb(frame, size)


class _SeekMissed(Exception):
    """Seeking did not land where the packet index said; fall back to decoding from the start."""


class PyAVBackend:
    """PyAV (FFmpeg). The frame index comes from demuxing packets, which decodes nothing.

    Reading seeks to the key frame before each wanted frame (or keeps decoding forward when no
    key frame lies in between), converts only the wanted frames to RGB and keeps only those, so
    memory is bounded by the frames asked for, whatever the video's length. Streams without
    presentation timestamps (raw H.264, AVI) are decoded from the start and counted instead,
    stopping after the last wanted frame.
    """

    name = "pyav"
    scales_at_decode = True
    # Containers that store decode timestamps only: frame pts after a seek do not give the
    # presentation order, so frames are counted from the start instead.
    COUNT_ONLY_FORMATS = frozenset({"avi"})

    def __init__(self, source: "str | bytes", label: str):
        import av  # noqa: F401  ImportError -> "not installed"

        self.label = label
        self._source = source
        self.frames_decoded = 0  # how many frames the decoder produced (tests check seeking)
        self._index_packets()
        # A fresh container for decoding: rewinding after the index pass fails on unseekable
        # inputs (raw streams).
        self._container = self._open()
        self._stream = self._container.streams.video[0]
        # frames are turned one by one (the matrix comes with each); this is the first one's turn
        self._orientation = probe_orientation(source, label)
        self.rotation = self._orientation.rotation

    def _open(self):
        import av

        container = av.open(_file_like(self._source))
        if not container.streams.video:
            container.close()
            raise VideoDecodeError(self.label, "the file has no video stream (zero frames or audio only)")
        return container

    def _index_packets(self) -> None:
        """Presentation timestamps of every frame and of the key frames, from the packets alone."""
        pts: list[int | None] = []
        keyframes: list[int] = []
        container = self._open()
        count_only = bool(set(container.format.name.split(",")) & self.COUNT_ONLY_FORMATS)
        try:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe and packet.pts is not None:
                    keyframes.append(packet.pts)
        finally:
            container.close()
        if not pts:
            raise VideoDecodeError(self.label, "the video stream has no frames")
        self._num_frames = len(pts)
        self._timestamps_valid = not any(p is None for p in pts)
        self._frame_pts: list[int] | None = sorted(pts) if self._timestamps_valid else None
        self._seekable = self._timestamps_valid and not count_only
        self._keyframe_pts = sorted(keyframes)

    def _fps(self) -> float:
        for rate in (self._stream.average_rate, self._stream.guessed_rate):
            if rate:
                return float(rate)
        span = self.timestamps()[-1]
        return (self._num_frames - 1) / span if span > 0 else 25.0

    def probe(self) -> VideoInfo:
        fps = self._fps()
        width, height = self._orientation.width, self._orientation.height
        return VideoInfo(self._num_frames, fps, _duration(self.timestamps(), fps), width, height, self.name, self.rotation)

    def timestamps(self) -> np.ndarray:
        if self._frame_pts is None:  # no timestamps in the stream: assume a constant rate
            rate = self._stream.average_rate or self._stream.guessed_rate or 25
            return np.arange(self._num_frames, dtype=np.float64) / float(rate)
        pts = np.asarray(self._frame_pts, dtype=np.float64)
        return (pts - pts[0]) * float(self._stream.time_base)

    def read(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> torch.Tensor:
        unique = _check_range(indices, self._num_frames, self.label)
        if not unique:
            raise ValueError("read() needs at least one frame index")
        got: dict[int, np.ndarray] | None = None
        if self._seekable:
            try:
                got = self._read_seeking(unique, size)
            except _SeekMissed:
                got = None
        if got is None:
            got = self._read_sequential(unique, size)
        decoded = np.stack([got[i] for i in unique])
        return _hwc_to_tchw(_gather(unique, decoded, indices))

    def _keyframe_before(self, pts: int) -> int:
        position = bisect_right(self._keyframe_pts, pts)
        return self._keyframe_pts[position - 1] if position else self._frame_pts[0]

    def _read_seeking(self, unique: list[int], size: tuple[int, int] | None) -> dict[int, np.ndarray]:
        index_of_pts = {self._frame_pts[i]: i for i in unique}
        got: dict[int, np.ndarray] = {}
        frames = None  # the live decode iterator
        position: int | None = None  # pts of the last frame it produced
        for index in unique:
            if index in got:
                continue
            target = self._frame_pts[index]
            keyframe = self._keyframe_before(target)
            # Seek when nothing is being decoded yet, or when a key frame between here and the
            # target lets the decoder skip frames; otherwise decoding forward is cheaper.
            if frames is None or position is None or position >= target or keyframe > position:
                self._container.seek(keyframe, stream=self._stream, backward=True, any_frame=False)
                frames = self._container.decode(self._stream)
                position = None
            for frame in frames:
                self.frames_decoded += 1
                # Presentation timestamps leave the decoder in increasing order; anything else
                # means the stream's pts cannot locate frames.
                if frame.pts is None or (position is not None and frame.pts <= position):
                    raise _SeekMissed
                position = frame.pts
                wanted = index_of_pts.get(frame.pts)
                if wanted is not None and wanted not in got:
                    got[wanted] = _frame_to_rgb(frame, size)
                if frame.pts >= target:
                    break
            if index not in got:
                raise _SeekMissed
        return got

    def _read_sequential(self, unique: list[int], size: tuple[int, int] | None) -> dict[int, np.ndarray]:
        container = self._open()
        wanted, last = set(unique), unique[-1]
        got: dict[int, np.ndarray] = {}
        try:
            for count, frame in enumerate(container.decode(container.streams.video[0])):
                self.frames_decoded += 1
                if count in wanted:
                    got[count] = _frame_to_rgb(frame, size)
                if count >= last:
                    break
        finally:
            container.close()
        if len(got) != len(unique):
            missing = sorted(wanted - set(got))
            raise VideoDecodeError(
                self.label, f"the decoder produced no frame for indices {missing[:5]} (truncated or corrupt stream?)"
            )
        return got

    def close(self) -> None:
        self._container.close()


def _duration(timestamps: np.ndarray, fps: float) -> float:
    # Rounded to the microsecond so that float32 (decord) and exact (PyAV) timestamps agree.
    return round(float(timestamps[-1]) + (1.0 / fps if fps > 0 else 0.0), 6)


register_backend("decord", DecordBackend)
register_backend("pyav", PyAVBackend)
