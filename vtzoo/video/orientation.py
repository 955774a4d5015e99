"""Display rotation: the turn a player applies before showing the stored frames.

Phones store the sensor's landscape picture and a display matrix (MP4 ``tkhd``, Matroska
projection) that says how to turn it. FFmpeg reads that matrix and hands it to PyAV with every
decoded frame (``VideoFrame.rotation``: counter-clockwise degrees); decord 0.6 applies it itself,
but only for MP4/MOV. vtzoo reads it through PyAV for every backend, so frames are upright
whichever decoder produced them, and the clip records the turn it applied.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Orientation:
    """What the first decoded frame says: the turn to apply and the upright frame size."""

    rotation: int  # counter-clockwise degrees: 0, 90, 180 or 270
    width: int  # of the upright frames
    height: int


def upright_degrees(rotation: float | None) -> int:
    """A display rotation (any sign, as FFmpeg reports it) as 0, 90, 180 or 270 counter-clockwise.

    Phones only write quarter turns; another angle is taken to the nearest one.
    """
    return int(round(float(rotation or 0) / 90.0)) % 4 * 90


def turn(frames: np.ndarray, degrees: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """``frames`` turned ``degrees`` counter-clockwise in the plane of ``axes`` (rows, columns)."""
    return np.rot90(frames, degrees // 90, axes=axes) if degrees else frames


def turned_size(width: int, height: int, degrees: int) -> tuple[int, int]:
    """(width, height) after a turn of ``degrees``."""
    return (height, width) if degrees in (90, 270) else (width, height)


def upright_rgb(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """One ``av.VideoFrame`` as an upright (H, W, 3) uint8 RGB array.

    ``size`` (upright height, width): FFmpeg's scaler resizes while it converts from YUV (bicubic),
    so the full-size RGB picture is never made. The stored frame is scaled to the turned size.
    """
    degrees = upright_degrees(frame.rotation)
    if size is None:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        height, width = size
        stored_width, stored_height = turned_size(width, height, degrees)
        rgb = frame.to_ndarray(format="rgb24", width=stored_width, height=stored_height, interpolation="BICUBIC")
    return np.ascontiguousarray(turn(rgb, degrees))


def probe_orientation(source: "str | bytes", label: str) -> Orientation:
    """The display rotation and upright size of a video, from its first decoded frame (PyAV)."""
    import av

    from vtzoo.video.errors import VideoDecodeError

    with av.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source) as container:
        for frame in container.decode(video=0):
            degrees = upright_degrees(frame.rotation)
            width, height = turned_size(frame.width, frame.height, degrees)
            return Orientation(degrees, width, height)
    raise VideoDecodeError(label, "no frame could be decoded")
