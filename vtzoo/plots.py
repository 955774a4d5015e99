"""Plots where numbers are compared (matplotlib, the ``plots`` extra).

* :func:`plot_throughput`: clips/s of every benchmark row (``benchmarks/bench.py --json``), one
  panel per operator and input, bars per implementation and precision, with the speed ratio to
  the original in float32 and the cosine to vtzoo float32 written on the bars.
* :func:`plot_training`: the loss and R@1 (or top-1) curves of a training run, from its
  ``metrics.jsonl`` (and ``steps.jsonl`` beside it, when the trainer logs the loss per step).

Both write a PNG and return its path; ``benchmarks/plot_benchmarks.py`` renders docs/ from the
committed results.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from vtzoo.errors import InputError

BENCH_FIELDS = ("implementation", "operator", "variant", "batch", "frames", "precision", "clips_per_s", "latency_ms",
                "gflops_per_clip", "min_cos_vs_fp32", "ratio_vs_original_fp32")
RECALL_KEYS = ("t2v_r1", "v2t_r1", "top1")  # what the training contract's evaluations report


def read_jsonl(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The JSON objects of a file, one per line; a broken line or a missing field names its line."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number} is not JSON ({exc.msg})", str(path)) from None
        missing = [field for field in required if field not in row]
        if not isinstance(row, dict) or missing:
            raise InputError(f"line {number} lacks {', '.join(missing) or 'an object'}", str(path))
        rows.append(row)
    return rows


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'vtzoo[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- benchmarks ---------------------------------------------------------------------------------
def series_label(row: dict[str, Any]) -> str:
    """``vtzoo bf16``, ``original fp32``, ``vtzoo fp32 openvino``: what one bar colour stands for."""
    backend = row.get("backend")
    return " ".join(str(p) for p in (row["implementation"], row["precision"], backend if backend not in (None, "torch") else "")
                    if p)


def _bar_note(row: dict[str, Any]) -> str:
    lines = [f"{row['clips_per_s']:.2f}"]
    ratio = row.get("ratio_vs_original_fp32")
    if row["implementation"] != "original" and ratio is not None:
        lines.append(f"{ratio:.2f}× orig.")
    cosine = row.get("min_cos_vs_fp32")
    if cosine is not None and cosine < 0.99995:
        lines.append(f"cos {cosine:.4f}")
    return "\n".join(lines)


def plot_throughput(rows: Iterable[dict[str, Any]], out: str | os.PathLike, title: str = "") -> Path:
    """Grouped bars of clips/s: a panel per (operator, variant, frames), batch sizes along x."""
    return _save(throughput_figure(rows, title), out)


def throughput_figure(rows: Iterable[dict[str, Any]], title: str = ""):
    """The figure of :func:`plot_throughput` (a matplotlib Figure)."""
    plt = _pyplot()
    rows = list(rows)
    if not rows:
        raise InputError("no benchmark rows to plot")
    panels: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        panels[(row["operator"], row["variant"], row["frames"])].append(row)
    labels = sorted({series_label(r) for r in rows}, key=lambda s: (not s.startswith("vtzoo"), s))
    colours = {label: plt.cm.tab10(i % 10) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 4.2 * len(panels)), 4.2), squeeze=False)
    for ax, ((operator, variant, frames), members) in zip(axes[0], sorted(panels.items(), key=lambda p: str(p[0]))):
        _throughput_panel(ax, members, labels, colours)
        ax.set_title(f"{operator}/{variant}\n{frames} frames", fontsize=10)
    axes[0][0].set_ylabel("clips/s (higher is better)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[label]) for label in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _throughput_panel(ax, rows: list[dict[str, Any]], labels: list[str], colours: dict) -> None:
    batches = sorted({r["batch"] for r in rows})
    present = [label for label in labels if any(series_label(r) == label for r in rows)]
    width = 0.8 / max(1, len(present))
    top = max(r["clips_per_s"] for r in rows)
    for offset, label in enumerate(present):
        for position, batch in enumerate(batches):
            row = next((r for r in rows if r["batch"] == batch and series_label(r) == label), None)
            if row is None:
                continue
            x = position - 0.4 + width * (offset + 0.5)
            ax.bar(x, row["clips_per_s"], width * 0.92, color=colours[label])
            ax.text(x, row["clips_per_s"] + top * 0.02, _bar_note(row), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set_ylim(0, top * 1.35)
    ax.grid(axis="y", alpha=0.3)


# -- training -------------------------------------------------------------------------------------
def _x_of(row: dict[str, Any], index: int) -> float:
    return float(row.get("step", row.get("epoch", index)))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plot_training(metrics: str | os.PathLike, out: str | os.PathLike, title: str = "") -> Path:
    """Loss (left) and R@1 / top-1 (right) against the training step: see :func:`training_figure`."""
    return _save(training_figure(metrics, title), out)


def training_figure(metrics: str | os.PathLike, title: str = ""):
    """Loss (left) and R@1 / top-1 (right) against the training step, one line per split.

    ``metrics`` is a run's ``metrics.jsonl`` (one object per evaluation: ``split``, ``step`` or
    ``epoch``, and metrics such as ``t2v_r1``, ``v2t_r1``, ``top1``, ``loss``) or the run folder;
    a ``steps.jsonl`` beside it (``step``, ``loss`` per optimizer step) gives the training loss."""
    plt = _pyplot()
    path = Path(metrics)
    path = path / "metrics.jsonl" if path.is_dir() else path
    evaluations = read_jsonl(path)
    steps_file = path.with_name("steps.jsonl")
    steps = read_jsonl(steps_file, required=("loss",)) if steps_file.is_file() else []
    fig, (loss_ax, recall_ax) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        points = [(_x_of(s, i), s["loss"]) for i, s in enumerate(steps) if _finite(s["loss"])]
        loss_ax.plot(*zip(*points), linewidth=1, label="train loss (per step)")
    drawn = _curves(loss_ax, evaluations, lambda key: "loss" in key)
    recalls = _curves(recall_ax, evaluations, lambda key: key in RECALL_KEYS)
    if not (steps or drawn or recalls):
        plt.close(fig)
        raise InputError("no loss and no R@1/top-1 values to plot", str(path))
    for ax, what in ((loss_ax, "loss"), (recall_ax, "R@1 / top-1")):
        ax.set_xlabel("step" if any("step" in r for r in [*steps, *evaluations]) else "epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.suptitle(title or path.parent.name, fontsize=11)
    fig.tight_layout()
    return fig


def _curves(ax, evaluations: list[dict[str, Any]], wanted) -> int:
    """One line per (split, metric) among the evaluations; returns how many were drawn."""
    curves: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for index, row in enumerate(evaluations):
        for key, value in row.items():
            if wanted(key) and _finite(value):
                curves[(str(row.get("split", "eval")), key)].append((_x_of(row, index), float(value)))
    for (split, key), points in sorted(curves.items()):
        ax.plot(*zip(*sorted(points)), marker="o", markersize=3, label=f"{split} {key}")
    return len(curves)


def _save(fig, out: str | os.PathLike) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # no version stamp in the file, so re-rendering the same numbers gives the same bytes
    fig.savefig(out, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return out


def is_bench_results(path: str | Path) -> bool:
    """Whether ``path`` holds rows of ``bench.py --json`` (other benchmarks keep other schemas)."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "implementation" in row and "clips_per_s" in row
