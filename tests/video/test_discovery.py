"""Finding the videos of a folder: by probing each file, never by its suffix alone, and saying
which files were not taken and why."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vtzoo.video import discover_videos


def write_video(path: Path, codec: str, container_format: str | None = None, frames: int = 10) -> Path:
    rng = np.random.default_rng(0)
    container = av.open(str(path), "w", format=container_format)
    stream = container.add_stream(codec, rate=25)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    for _ in range(frames):
        picture = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
        for packet in stream.encode(picture):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def write_audio_only(path: Path) -> Path:
    container = av.open(str(path), "w", format="ipod")
    stream = container.add_stream("aac", rate=16000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 16000
    for packet in [*stream.encode(frame), *stream.encode()]:
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("awkward")
    write_video(root / "phone.3gp", "libx264", "3gp")
    write_video(root / "broadcast.ts", "mpeg2video", "mpegts")
    (root / "camcorder").mkdir()
    write_video(root / "camcorder" / "00001.mts", "libx264", "mpegts")
    write_video(root / "open.ogv", "libvpx", "ogg")
    write_video(root / "no_suffix", "libx264", "mp4")
    write_audio_only(root / "audio_only.m4a")
    (root / "notes.txt").write_text("not a video\n")
    image = av.open(str(root / "poster.png"), "w", format="image2")
    stream = image.add_stream("png", rate=1)
    stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
    for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")), *stream.encode()]:
        image.mux(packet)
    image.close()
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # named like a video
    return root


def test_videos_are_found_by_probing_whatever_their_suffix(folder):
    found = discover_videos(folder)
    names = sorted(p.relative_to(folder).as_posix() for p in found.videos)
    # broken.mp4 is named like a video and is kept, so its failure is reported by whoever decodes it
    assert names == ["broadcast.ts", "broken.mp4", "camcorder/00001.mts", "no_suffix", "open.ogv", "phone.3gp"]


def test_files_not_taken_are_listed_with_the_reason(folder):
    skipped = {p.name: reason for p, reason in discover_videos(folder).skipped.items()}
    assert set(skipped) == {"audio_only.m4a", "notes.txt", "poster.png"}
    assert "no video stream" in skipped["audio_only.m4a"] and "audio only" in skipped["audio_only.m4a"]
    assert "still image" in skipped["poster.png"]
    assert "not a media file" in skipped["notes.txt"]


def test_a_missing_folder_is_named(tmp_path):
    from vtzoo.errors import UsageError

    with pytest.raises(UsageError, match=str(tmp_path / "nope")):
        discover_videos(tmp_path / "nope")
