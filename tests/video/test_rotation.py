"""Display rotation: a file whose display matrix says "turn me 90 degrees" (what phones write)
comes out upright from every backend, through the fallback, and through ``vtzoo.load_video``.

The test files store a landscape picture with four coloured quadrants and carry a display
matrix written by PyAV (``VideoStream.set_display_rotation``), exactly as a phone's MP4 carries
one. The upright picture is ``np.rot90(stored, rotation // 90)``: FFmpeg's rotation is
counter-clockwise (``VideoFrame.rotation``), and so is ``np.rot90``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vtzoo
from vtzoo.video import load_video, probe_video

QUADRANTS = {  # (row half, column half) -> RGB
    (0, 0): (220, 30, 30),
    (0, 1): (30, 220, 30),
    (1, 0): (30, 30, 220),
    (1, 1): (220, 220, 220),
}
ROTATIONS = (90, 180, 270)


def stored_picture(height: int, width: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    for (row, col), colour in QUADRANTS.items():
        image[row * height // 2 : (row + 1) * height // 2, col * width // 2 : (col + 1) * width // 2] = colour
    return image


def write_rotated(media, path: Path, rotation: int, width: int, height: int) -> Path:
    codec = "libvpx-vp9" if path.suffix == ".webm" else "libx264"
    return media.write_video(path, 6, width, height, codec=codec, rotation=rotation,
                             picture=lambda _index, h, w: stored_picture(h, w))


def quadrant_means(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) 0..255 -> (2, 2, 3): the mean colour of each quadrant."""
    h, w = image.shape[:2]
    return np.array(
        [[image[r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2].mean((0, 1)) for c in (0, 1)] for r in (0, 1)]
    )


def assert_upright(clip, rotation: int, stored_hw: tuple[int, int]) -> None:
    upright = np.rot90(stored_picture(*stored_hw), rotation // 90)
    assert tuple(clip.frames.shape[1:]) == (3, *upright.shape[:2])
    first = clip.frames[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(quadrant_means(first) - quadrant_means(upright)).max() < 12
    assert clip.rotation == rotation
    assert clip.provenance()["rotation"] == rotation


@pytest.fixture(scope="module")
def rotated(tmp_path_factory, media) -> dict[tuple[str, int], Path]:
    root = tmp_path_factory.mktemp("rotated")
    files = {}
    for rotation in (0, *ROTATIONS):
        files["mp4", rotation] = write_rotated(media, root / f"r{rotation}.mp4", rotation, 128, 64)
        files["mkv", rotation] = write_rotated(media, root / f"r{rotation}.mkv", rotation, 128, 64)
        # decord 0.6 cannot copy out 48-pixel-wide frames: "auto" falls back to PyAV
        files["decord_fails", rotation] = write_rotated(media, root / f"square48_r{rotation}.mp4", rotation, 48, 48)
    return files


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("container", ["mp4", "mkv"])
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_each_backend_returns_upright_frames(rotated, backend, container, rotation):
    clip = load_video(rotated[container, rotation], num_frames=2, backend=backend)
    assert clip.backend == backend
    assert_upright(clip, rotation, (64, 128))


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_fallback_returns_upright_frames(rotated, rotation):
    clip = load_video(rotated["decord_fails", rotation], num_frames=2, backend="auto")
    assert clip.backend == "pyav" and "decord" in clip.fallback
    assert_upright(clip, rotation, (48, 48))


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_unrotated_file_records_zero(rotated, backend):
    clip = load_video(rotated["mp4", 0], num_frames=2, backend=backend)
    assert_upright(clip, 0, (64, 128))


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_probe_reports_the_displayed_size(rotated, backend):
    info = probe_video(rotated["mp4", 90], backend=backend)
    assert (info.width, info.height, info.rotation) == (64, 128, 90)


def test_public_load_video_is_upright_from_bytes(rotated):
    """The package-level ``vtzoo.load_video`` (DESIGN "Video input") on the bytes of a file."""
    assert vtzoo.load_video is load_video
    clip = vtzoo.load_video(rotated["mp4", 270].read_bytes(), num_frames=3, backend="pyav")
    assert_upright(clip, 270, (64, 128))


def test_streamed_frames_are_upright(rotated):
    """The ``video.frames`` pipeline op (what streaming classification reads) turns frames too."""
    from vtzoo.pipelines import Pipeline

    pipe = Pipeline("path").map("path", "frames", "video.frames").output("frames")
    frames = list(pipe(str(rotated["mkv", 90]))["frames"])
    upright = np.rot90(stored_picture(64, 128), 1)
    assert frames[0].shape == upright.shape
    assert np.abs(quadrant_means(frames[0]) - quadrant_means(upright)).max() < 12
