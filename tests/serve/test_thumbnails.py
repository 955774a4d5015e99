"""Thumbnail strips: the window's frames, made once, keyed by content hash."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vtzoo.errors import VtzooError
from vtzoo.registry.weights import sha256_of
from vtzoo.serve.thumbnails import ThumbnailCache, data_uri, default_root


def level_of_second(second: int) -> int:
    return 20 + 20 * second


@pytest.fixture(scope="module")
def seconds_video(tmp_path_factory) -> Path:
    """10 s at 10 fps; every frame of second s is the grey level ``level_of_second(s)``."""
    path = tmp_path_factory.mktemp("clock") / "clock.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(100):
            pixels = np.full((48, 64, 3), level_of_second(index // 10), np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


def levels(files: list[Path]) -> list[float]:
    return [float(np.asarray(Image.open(f).convert("L"), dtype=np.float64).mean()) for f in files]


def test_a_window_strip_shows_the_window_frames(seconds_video, tmp_path):
    cache = ThumbnailCache(tmp_path, count=4)
    digest = sha256_of(seconds_video)
    window = cache.strip(seconds_video, digest, 4.0, 8.0)  # middles of its quarters: 4.5, 5.5, 6.5, 7.5 s
    assert levels(window) == pytest.approx([level_of_second(s) for s in (4, 5, 6, 7)], abs=3)
    whole = cache.strip(seconds_video, digest, 0.0, 10.0)  # 1.25, 3.75, 6.25, 8.75 s
    assert levels(whole) == pytest.approx([level_of_second(s) for s in (1, 3, 6, 8)], abs=3)
    assert Image.open(window[0]).size == (160, 120)  # the short side is 120 px


def test_thumbnails_are_made_once_and_keyed_by_content(seconds_video, tmp_path):
    cache = ThumbnailCache(tmp_path, count=3)
    digest = sha256_of(seconds_video)
    files = cache.strip(seconds_video, digest, 0.0, 10.0)
    assert all(f.is_relative_to(tmp_path / digest) for f in files)
    stamps = [f.stat().st_mtime_ns for f in files]
    # the same content under another name (or no file at all any more): nothing is decoded again
    again = ThumbnailCache(tmp_path, count=3).strip(tmp_path / "renamed-or-gone.mp4", digest, 0.0, 10.0)
    assert again == files and [f.stat().st_mtime_ns for f in again] == stamps
    assert data_uri(files[0]).startswith("data:image/jpeg;base64,/9j/")  # JPEG's magic bytes


def test_an_unreadable_video_raises_and_leaves_no_files(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    cache = ThumbnailCache(tmp_path / "thumbs")
    with pytest.raises(VtzooError, match="broken.mp4"):
        cache.strip(broken, sha256_of(broken), 0.0, 0.0)
    assert not any(p.is_file() for p in (tmp_path / "thumbs").rglob("*"))
    with pytest.raises(ValueError, match="not a content hash"):
        cache.strip(broken, "../../etc", 0.0, 0.0)


def test_the_cache_lives_beside_the_index():
    assert default_root("/data/library/vtzoo.db") == Path("/data/library/vtzoo.db.thumbs")
    assert default_root("http://127.0.0.1:19530").name == "thumbs"
    assert default_root(None).name == "thumbs"
