"""Benchmark and training plots: what is drawn, bad input, and the one-command re-render."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from vtzoo.errors import InputError  # noqa: E402
from vtzoo.plots import plot_throughput, read_jsonl, throughput_figure, training_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def bench_row(implementation="vtzoo", precision="fp32", batch=1, clips=1.0, ratio=None, cosine=1.0, **extra):
    return {"implementation": implementation, "operator": "clip4clip", "variant": "vit-b32-zeroshot", "batch": batch,
            "frames": 12, "precision": precision, "clips_per_s": clips, "latency_ms": 1000 / clips,
            "gflops_per_clip": 105.8, "min_cos_vs_fp32": cosine, "ratio_vs_original_fp32": ratio, **extra}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_throughput_bars_are_the_rows_figures():
    rows = [bench_row(clips=1.2, ratio=1.0), bench_row(precision="bf16", clips=2.4, ratio=2.0, cosine=0.9991),
            bench_row("original", clips=1.2, ratio=1.0, cosine=None), bench_row(batch=8, clips=1.1, ratio=0.95),
            {**bench_row(operator="drl", clips=0.5), "operator": "drl", "variant": "vit-b32-msrvtt-wti"}]
    figure = throughput_figure(rows)
    clip4clip, drl = figure.axes
    assert clip4clip.get_title().startswith("clip4clip/vit-b32-zeroshot") and drl.get_title().startswith("drl/")
    heights = sorted(round(bar.get_height(), 3) for bar in clip4clip.patches)
    assert heights == [1.1, 1.2, 1.2, 2.4]
    notes = [text.get_text() for text in clip4clip.texts]
    assert "2.40\n2.00× orig.\ncos 0.9991" in notes  # the bf16 row: speed-up and fidelity
    assert "1.20" in notes  # the original's own bar carries no ratio
    legend = [t.get_text() for t in figure.legends[0].texts]
    assert legend == ["vtzoo bf16", "vtzoo fp32", "original fp32"]


def test_a_backend_other_than_torch_gets_its_own_series():
    figure = throughput_figure([bench_row(backend="torch"), bench_row(backend="openvino", clips=3.0)])
    assert [t.get_text() for t in figure.legends[0].texts] == ["vtzoo fp32", "vtzoo fp32 openvino"]


def test_results_files_name_the_broken_line(tmp_path):
    broken = tmp_path / "r.jsonl"
    broken.write_text(json.dumps(bench_row()) + "\n{not json\n")
    with pytest.raises(InputError, match=r"r.jsonl: line 2 is not JSON"):
        read_jsonl(broken)
    partial = write_jsonl(tmp_path / "p.jsonl", [{k: v for k, v in bench_row().items() if k != "clips_per_s"}])
    with pytest.raises(InputError, match=r"p.jsonl: line 1 lacks clips_per_s"):
        read_jsonl(partial, required=["implementation", "clips_per_s"])
    with pytest.raises(InputError, match="no benchmark rows"):
        plot_throughput([], tmp_path / "x.png")


def test_training_curves_from_metrics_and_steps(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "steps.jsonl", [{"step": s, "epoch": 1, "loss": 4.0 / s, "lr": 1e-4} for s in range(1, 11)])
    write_jsonl(run / "metrics.jsonl", [
        {"split": "val", "epoch": 1, "step": 5, "t2v_r1": 0.2, "v2t_r1": 0.1, "t2v_mdr": 8.0},
        {"split": "val", "epoch": 2, "step": 10, "t2v_r1": 0.4, "v2t_r1": 0.3, "t2v_mdr": 3.0},
        {"split": "test", "epoch": 2, "step": 10, "t2v_r1": 0.35, "v2t_r1": float("nan")},
    ])
    loss, recall = training_figure(run).axes
    (train_loss,) = loss.lines
    assert list(train_loss.get_xdata()) == list(range(1, 11)) and train_loss.get_ydata()[-1] == pytest.approx(0.4)
    curves = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in recall.lines}
    assert curves == {"test t2v_r1": ([10.0], [0.35]), "val t2v_r1": ([5.0, 10.0], [0.2, 0.4]),
                      "val v2t_r1": ([5.0, 10.0], [0.1, 0.3])}  # NaN left out, MdR is not a recall


def test_training_without_anything_to_plot_is_an_error(tmp_path):
    metrics = write_jsonl(tmp_path / "metrics.jsonl", [{"split": "val", "step": 1, "t2v_mdr": 3.0}])
    with pytest.raises(InputError, match="no loss and no R@1"):
        training_figure(metrics)


def test_re_rendering_is_one_command_and_gives_the_same_bytes(tmp_path):
    results, out = tmp_path / "results", tmp_path / "images"
    results.mkdir()
    write_jsonl(results / "run.jsonl", [bench_row(clips=1.2, ratio=1.0), bench_row("original", clips=1.2, ratio=1.0)])
    command = [sys.executable, str(ROOT / "benchmarks" / "plot_benchmarks.py"), "--results", str(results), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    first = (out / "bench-run.png").read_bytes()
    subprocess.run(command, check=True, capture_output=True)
    assert (out / "bench-run.png").read_bytes() == first and first.startswith(b"\x89PNG")
    empty = subprocess.run([*command[:2], "--results", str(tmp_path / "none"), "--out", str(out)], capture_output=True,
                           text=True)
    assert empty.returncode == 2 and "no *.jsonl results" in empty.stderr


def test_the_committed_results_render():
    from vtzoo.plots import is_bench_results

    for file in sorted(f for f in (ROOT / "benchmarks" / "results").glob("*.jsonl") if is_bench_results(f)):
        assert (ROOT / "docs" / "images" / f"bench-{file.stem}.png").is_file(), f"run `make plots` for {file.name}"
