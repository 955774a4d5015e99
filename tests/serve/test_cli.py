"""``vtzoo serve`` arguments, and the HTML reports of ``vtzoo search --html`` and ``vtzoo eval --html``."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path


import vtzoo
from vtzoo.cli import build_parser, main


def report_data(path: Path) -> dict:
    match = re.search(r'<script id="vtzoo-data" type="application/json">(.*?)</script>', path.read_text(), re.S)
    return json.loads(match.group(1))


def test_serve_binds_this_machine_only_by_default():
    args = build_parser().parse_args(["serve", "--db", "x.db"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.pipeline == "text_video_query"


def test_serve_refuses_a_missing_index_and_a_taken_port(demo_index, tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "nothing.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vtzoo serve: error: index database {tmp_path / 'nothing.db'} does not exist: make it with vtzoo index DIR --db {tmp_path / 'nothing.db'}"
    assert main(["serve", "--db", str(demo_index), "--thumbnails", "0"]) == 2
    assert capsys.readouterr().err.strip() == "vtzoo serve: error: --thumbnails must be between 1 and 32, got 0"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--db", str(demo_index), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_search_html_holds_the_hits_with_inlined_thumbnails(demo_index, kit, tmp_path, capsys):
    out = tmp_path / "reports" / "rabbit.html"
    code = main(["search", "a rabbit in a meadow", "--db", str(demo_index), "--top-k", "3", "--html", str(out),
                 *kit.step_sets()])
    printed = capsys.readouterr().out
    assert code == 0 and f"report: {out}" in printed
    ranked = re.findall(r"^\s*\d+\.\s+-?[\d.]+\s+(\S+)", printed, re.M)
    data = report_data(out)
    assert data["kind"] == "search" and data["query"] == "a rabbit in a meadow"
    assert data["operator"] == "clip4clip/vit-b32-zeroshot"
    assert [h["path"] for h in data["hits"]] == ranked  # the same hits, in the same order
    for hit in data["hits"]:
        assert len(hit["thumbnails"]) == 4 and all(t.startswith("data:image/jpeg;base64,") for t in hit["thumbnails"])
        assert hit["video"] == Path(hit["path"]).as_uri()
    assert not re.search(r"https?://", out.read_text())  # nothing to fetch from a network
    assert any(demo_index.with_name("vtzoo.db.thumbs").rglob("*.jpg"))  # cached beside the index


def test_search_html_refuses_a_folder_before_searching(tmp_path, capsys):
    assert main(["search", "a cat", "--db", str(tmp_path / "none.db"), "--html", str(tmp_path)]) != 0
    assert capsys.readouterr().err.strip() == (f"vtzoo search: error: {tmp_path}: --html names a folder; "
                                               "give the report's file name")


def test_search_html_of_a_folder_search(sample_dir, kit, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(sample_dir / "bikes.mp4", folder / "bikes.mp4")
    (folder / "notes.mp4").write_text("not a video")  # skipped by the search, absent from the report
    out = tmp_path / "folder.html"
    code = main(["search", str(folder), "people riding bikes", "--html", str(out), "--cache-dir", str(tmp_path / "c"),
                 "-q", *kit.operator_flags()])
    capsys.readouterr()
    assert code == 3  # one input failed, the other ranked
    hits = report_data(out)["hits"]
    assert [Path(h["path"]).name for h in hits] == ["bikes.mp4"] and len(hits[0]["thumbnails"]) == 4


def test_eval_html_ranks_every_query(sample_dir, kit, tmp_path, capsys):
    dataset = tmp_path / "dataset"
    (dataset / "videos").mkdir(parents=True)
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        shutil.copyfile(sample_dir / name, dataset / "videos" / name)
    # "a video" captions two videos: one of them is not ranked first, whatever the weights
    captions = {"bikes.mp4": ["people ride bikes", "a video"], "bigbuckbunny.mp4": ["a cartoon rabbit", "a video"],
                "carphone_pristine.mp4": ["a man on the phone in a car"]}
    (dataset / "captions.json").write_text(json.dumps(captions))
    out = tmp_path / "eval.html"
    code = main(["eval", "--dataset", str(dataset), "-q", "--html", str(out), *kit.step_sets(flag="--set")])
    metrics = json.loads(capsys.readouterr().out)
    assert code == 0
    data = report_data(out)
    assert data["kind"] == "eval" and data["metrics"] == metrics

    # the ranks, computed here straight from the operator with the same seeded random weights
    config = {k: v for k, v in kit.SMALL_CLIP4CLIP.items() if k != "weights"}
    op = vtzoo.create("clip4clip", "vit-b32-zeroshot", weights="random", **config)
    videos = sorted(captions)
    texts = [(c, videos.index(v)) for v in captions for c in captions[v]]
    video_emb = op.embed_video([str(dataset / "videos" / v) for v in videos])
    scores = op.similarity(op.embed_text([t for t, _ in texts]), video_emb)
    expected = [(t, int((scores[i] >= scores[i, v]).sum())) for i, (t, v) in enumerate(texts)]
    assert sorted((q["text"], q["rank"]) for q in data["queries"]) == sorted(expected)
    assert [q["rank"] for q in data["queries"]] == sorted((r for _, r in expected), reverse=True)  # worst first
    missed = sorted((r for _, r in expected if r > 1), reverse=True)
    assert missed and [q["rank"] for q in data["worst"]] == missed[:5]  # the worst: not ranked first
    worst = data["worst"][0]
    assert worst["rank"] == max(r for _, r in expected) and len(worst["top"]) == 3
    assert [h["score"] for h in worst["top"]] == sorted((h["score"] for h in worst["top"]), reverse=True)
    assert all(len(h["thumbnails"]) == 4 for h in worst["top"])


def test_report_escapes_what_could_close_its_script(tmp_path):
    from vtzoo.serve.report import search_report
    from vtzoo.serve.thumbnails import ThumbnailCache

    html = search_report("</script><script>alert(1)</script>", [], ThumbnailCache(tmp_path))
    assert "<script>alert(1)" not in html
    assert json.loads(re.search(r'application/json">(.*?)</script>', html, re.S).group(1))["query"].startswith("</script>")
