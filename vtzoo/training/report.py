"""The plot of a run: training loss and the validation metric over optimizer steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_run(out: Path, metric: str, filename: str = "training.png") -> Path | None:
    """Write OUT/training.png from steps.jsonl and metrics.jsonl (needs matplotlib; skipped without)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("vtzoo train: matplotlib is not installed; no plot (pip install matplotlib)", file=sys.stderr)
        return None
    steps = [s for s in read_jsonl(out / "steps.jsonl") if s["loss"] == s["loss"]]  # NaN-free
    evals = [m for m in read_jsonl(out / "metrics.jsonl") if m["split"] == "val" and metric in m]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s["step"] for s in steps], [s["loss"] for s in steps], color="tab:blue", linewidth=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss", color="tab:blue")
    if evals:
        other = ax.twinx()
        other.plot([m["step"] for m in evals], [m[metric] for m in evals], "o-", color="tab:red")
        other.set_ylabel(f"val {metric}", color="tab:red")
        other.set_ylim(0, 1.0 if metric[-2:] not in ("dr", "nr") else None)
    ax.set_title(out.name)
    fig.tight_layout()
    path = out / filename
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
