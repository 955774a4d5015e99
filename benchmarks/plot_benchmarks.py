"""Render the throughput plots of docs/benchmarks.md from the committed results.

    python benchmarks/plot_benchmarks.py            # or: make plots
    python benchmarks/plot_benchmarks.py --results benchmarks/results --out docs/images

Every ``benchmarks/results/*.jsonl`` of rows of ``bench.py --json`` becomes
``docs/images/bench-<name>.png``; a training run's curves: ``--training RUN_DIR [--name N]``
writes ``docs/images/training-<N>.png``. Needs matplotlib (``pip install 'vtzoo[plots]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's vtzoo, also when it is not installed

from vtzoo.plots import BENCH_FIELDS, is_bench_results, plot_throughput, plot_training, read_jsonl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--training", type=Path, action="append", default=[], metavar="RUN_DIR",
                        help="also plot a training run's metrics.jsonl (repeatable)")
    args = parser.parse_args(argv)
    files = sorted(f for f in args.results.glob("*.jsonl") if is_bench_results(f))
    if not files and not args.training:
        print(f"plot_benchmarks: no *.jsonl results in {args.results}", file=sys.stderr)
        return 2
    for file in files:
        rows = read_jsonl(file, required=BENCH_FIELDS)
        title = f"{file.stem}: clips/s on {len({r['operator'] for r in rows})} operator(s)"
        print(plot_throughput(rows, args.out / f"bench-{file.stem}.png", title=title))
    for run in args.training:
        print(plot_training(run, args.out / f"training-{run.name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
