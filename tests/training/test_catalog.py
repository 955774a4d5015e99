"""A model trained by ``vtzoo train`` indexes and searches through the catalog pipelines."""

from __future__ import annotations

import json
import re
import shutil

import pytest

import vtzoo
from vtzoo.cli import main


def test_trained_model_indexes_and_searches_through_the_catalog(micro_dataset, micro_overrides, tmp_path, capsys):
    out = tmp_path / "c4c"
    vtzoo.train("clip4clip", micro_dataset, out, overrides=micro_overrides("clip4clip", **{"train.epochs": 2}),
                progress=False)
    folder, db = tmp_path / "videos", tmp_path / "index"
    folder.mkdir()
    for name in ("video00001.mp4", "video00002.mp4", "video00003.mp4", "video00004.mp4", "video00005.mp4"):
        shutil.copyfile(micro_dataset / "videos" / name, folder / name)
    assert main(["index", str(folder), "--db", str(db), "--set", f"embed.weights={out}",
                 "--set", "embed.precision=fp32", "-q"]) == 0
    assert "indexed 5 item(s)" in capsys.readouterr().out

    query = json.loads((micro_dataset / "captions.json").read_text())["video00003.mp4"][0]
    assert main(["search", query, "--db", str(db), "--weights", str(out), "--top-k", "3", "--precision", "fp32", "-q"]) == 0
    hits = [re.match(r"\s*\d+\.\s+(\S+)\s+(\S+)", line).groups() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(hits) == 3

    # the trained weights ranked them: each hit has the score the saved model gives it here, and
    # they are the three best (ties in any order)
    op = vtzoo.create("clip4clip", weights=str(out), precision="fp32")
    videos = [str(v) for v in sorted(folder.glob("*.mp4"))]
    scores = dict(zip(videos, op.similarity(op.embed_text([query]), op.embed_video(videos))[0].tolist()))
    for score, path in hits:
        assert float(score) == pytest.approx(scores[path], abs=1e-3)
    assert [float(s) for s, _ in hits] == pytest.approx(sorted(scores.values(), reverse=True)[:3], abs=1e-3)
