"""Train every family's ``synthetic-tiny`` recipe from scratch on a generated dataset; report test metrics.

    python benchmarks/train_synthetic.py [--families clip4clip movinet ...] [--count 400]
                                         [--max-minutes 10] [--work DIR] [--results benchmarks/results/training]

Writes, per family, ``<results>/<family>/`` (the run's metrics.jsonl, steps.jsonl, training.png,
recipe.json and result.json with the test metrics, wall time and machine) and ``<results>/table.md``
(the table of docs/training.md). Each run is ``vtzoo train`` in a subprocess, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = ("clip4clip", "movinet", "drl", "frozen_in_time", "coot", "videoclip", "mdmmt")
GOALS = {"retrieval": ("t2v_r5", 0.6), "classification": ("top1", 0.8)}


def run_family(family: str, dataset: Path, work: Path, results: Path, max_minutes: float) -> dict:
    out = work / family
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "vtzoo.cli", "train", "--op", family, "--recipe", "synthetic-tiny",
           "--dataset", str(dataset), "--out", str(out), "--max-minutes", str(max_minutes), "--quiet"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - started
    (results / family).mkdir(parents=True, exist_ok=True)
    (results / family / "stderr.log").write_text(proc.stderr)
    if proc.returncode != 0:
        return {"family": family, "error": proc.stderr.strip().splitlines()[-1:], "wall_s": wall}
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("metrics.jsonl", "steps.jsonl", "training.png", "recipe.json"):
        if (out / name).exists():
            shutil.copyfile(out / name, results / family / name)
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    result = {"family": family, "test": metrics, "wall_s": round(wall, 1), "steps": len(steps),
              "max_minutes": max_minutes, "dataset": dataset.name, "final_loss": steps[-1]["loss"] if steps else None,
              "load_average": os.getloadavg(), "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    (results / family / "result.json").write_text(json.dumps(result, indent=1))
    return result


def table(rows: list[dict]) -> str:
    lines = ["| family | test videos | t2v R@1 | t2v R@5 | t2v R@10 | MdR | top-1 | top-5 | goal | steps | wall (min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['family']} | failed: {' '.join(r['error'])} |||||||||")
            continue
        m = r["test"]
        task = "classification" if "top1" in m else "retrieval"
        metric, goal = GOALS[task]
        met = "met" if m[metric] >= goal else "not met"
        fmt = lambda k: f"{m[k]:.3f}" if k in m else "-"  # noqa: E731
        lines.append(f"| {r['family']} | {m['videos']} | {fmt('t2v_r1')} | {fmt('t2v_r5')} | {fmt('t2v_r10')} | "
                     f"{m['t2v_mdr'] if 't2v_mdr' in m else '-'} | {fmt('top1')} | {fmt('top5')} | "
                     f"{metric} >= {goal}: {met} | {r['steps']} | {r['wall_s'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--work", default="/tmp/vtzoo-train-bench")
    parser.add_argument("--results", default="benchmarks/results/training")
    args = parser.parse_args()
    work, results = Path(args.work), Path(args.results)
    dataset = work / f"synthetic-{args.count}-{args.seed}"
    if not (dataset / "splits.json").is_file():
        subprocess.run([sys.executable, "-m", "vtzoo.cli", "make-synthetic", str(dataset), "--count", str(args.count),
                        "--seed", str(args.seed)], check=True)
    rows = []
    for family in args.families:
        rows.append(run_family(family, dataset, work, results, args.max_minutes))
        print(json.dumps(rows[-1]), flush=True)
    previous = {}
    for path in sorted(results.glob("*/result.json")):
        previous[path.parent.name] = json.loads(path.read_text())
    ordered = [previous[f] for f in FAMILIES if f in previous]
    (results / "table.md").write_text(table(ordered))
    print(table(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
