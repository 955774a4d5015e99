"""Finding the videos of a folder: by probing each file, never by its suffix alone, and saying
which files were not taken and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vtzoo.video import discover_videos


@pytest.fixture(scope="module")
def folder(tmp_path_factory, media, audio_only) -> Path:
    root = tmp_path_factory.mktemp("awkward")
    media.write_video(root / "phone.3gp", 10, container_format="3gp")
    media.write_video(root / "broadcast.ts", 10, codec="mpeg2video", container_format="mpegts")
    (root / "camcorder").mkdir()
    media.write_video(root / "camcorder" / "00001.mts", 10, container_format="mpegts")
    media.write_video(root / "open.ogv", 10, codec="libvpx", container_format="ogg")
    media.write_video(root / "no_suffix", 10, container_format="mp4")
    shutil.copyfile(audio_only, root / "audio_only.m4a")
    (root / "notes.txt").write_text("not a video\n")
    media.write_video(root / "poster.png", 1, 8, 8, fps=1, codec="png", pix_fmt="rgb24", container_format="image2")
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
