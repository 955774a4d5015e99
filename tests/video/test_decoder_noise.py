"""What decord and its FFmpeg print (``[h264 @ 0x...] error while decoding MB``, ``ERROR opening``)
never reaches the terminal between vtzoo's lines: it is captured and summarised into the file's
failure reason, or into its provenance when the decoder concealed the damage. The process's real
stderr is checked, so this runs the command line in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = {"clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64, "transformer_layers": 1},
        "cross_hidden_size": 64, "max_frames": 4}


def coded_frames(data: bytes) -> tuple[int, int]:
    """The byte range of the MP4's ``mdat`` payload: damage there hits coded frames only, never
    the container's index (whose position depends on how large the encoder's frames came out)."""
    position = 0
    while position + 8 <= len(data):
        size, kind = int.from_bytes(data[position:position + 4], "big"), bytes(data[position + 4:position + 8])
        if kind == b"mdat":
            return position + 8, position + size
        position += size
    raise AssertionError("no mdat box in the test video")


def slice_data(data: bytes, first: int, last: int, header: int = 32) -> list[tuple[int, int]]:
    """The byte ranges of the coded picture data in ``data[first:last]`` (MP4 stores H.264 as
    NAL units each after its 4-byte length): damage must stay inside them, past each unit's
    slice header, or the decoder meets a wrong length or header and gives up instead of
    concealing (where that lands depends on how large the encoder's frames came out)."""
    ranges, position = [], first
    while position + 4 <= last:
        size = int.from_bytes(data[position:position + 4], "big")
        if size > 2 * header:
            ranges.append((position + 4 + header, position + 4 + size))
        position += 4 + size
    return ranges


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    clean = root / "clean.mp4"
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    container = av.open(str(clean), "w")  # moov at the end, as MP4 muxers write it by default
    stream = container.add_stream("libx264", rate=25)
    stream.width = stream.height = 64
    stream.pix_fmt = "yuv420p"
    for shift in range(50):
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(picture, shift, axis=1), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = bytearray(clean.read_bytes())
    ranges = slice_data(data, *coded_frames(data))
    rng = np.random.default_rng(1)
    for k in rng.choice(len(ranges), size=min(20, len(ranges)), replace=False):
        start, end = ranges[k]
        for position in rng.integers(start, end, 3):
            data[position] ^= 0xFF  # flipped bits in the coded frames: the decoder conceals them, loudly
    (root / "corrupt.mp4").write_bytes(bytes(data))
    (root / "truncated.mp4").write_bytes(clean.read_bytes()[: len(data) // 2])  # no moov atom
    return {"clean": clean, "corrupt": root / "corrupt.mp4", "truncated": root / "truncated.mp4"}


def test_decoder_noise_is_captured_and_summarised(damaged, tmp_path):
    out = tmp_path / "e.jsonl"
    config = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    videos = [str(damaged[name]) for name in ("clean", "corrupt", "truncated")]
    proc = subprocess.run(
        [sys.executable, "-m", "vtzoo.cli", "embed", *videos, "-q", "-o", str(out), "--weights", "random", *config],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 3, proc.stderr
    assert lines and all(line.startswith("vtzoo") for line in lines), proc.stderr  # no "[h264 @ 0x...]"
    failed = [line for line in lines if line.startswith("vtzoo: skipped")]
    assert len(failed) == 1 and str(damaged["truncated"]) in failed[0]
    assert "moov atom not found" in failed[0]  # what decord's FFmpeg said, in the file's reason

    rows = {Path(row["path"]).name: row for row in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"clean.mp4", "corrupt.mp4"}
    assert rows["clean.mp4"]["provenance"]["decoder_messages"] == ""
    if rows["corrupt.mp4"]["provenance"]["backend"] == "decord":
        assert "error while decoding MB" in rows["corrupt.mp4"]["provenance"]["decoder_messages"]


def test_other_output_passes_through_while_decoder_lines_are_captured(capfd):
    """While a file is open, descriptor 2 carries both: the decoder's lines are kept for that
    file, anything else (vtzoo's messages, a progress bar) reaches stderr unchanged and in order."""
    from vtzoo.video.native_output import capture

    first, second = capture("a.mp4"), capture("b.mp4")
    os.write(2, b"vtzoo: a message\n")
    os.write(2, b"[h264 @ 0x55d1c2a3e140] ")  # FFmpeg writes the prefix and the message apart
    os.write(2, b"error while decoding MB 13 15, bytestream 645\n")
    os.write(2, b"[06:17:17] src/video/video_reader.cc:83: ERROR opening: b.mp4, Invalid data\n")
    os.write(2, b"\rprogress 50%")
    assert first.summary() == "h264: error while decoding MB"
    second.close()
    first.close()
    assert second.lines == ["[h264 @ 0x55d1c2a3e140] error while decoding MB 13 15, bytestream 645",
                            "[06:17:17] src/video/video_reader.cc:83: ERROR opening: b.mp4, Invalid data"]
    os.write(2, b"\nafter\n")
    assert capfd.readouterr().err == "vtzoo: a message\n\rprogress 50%\nafter\n"
