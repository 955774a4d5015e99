"""One benchmark entry point for every operator.

    python benchmarks/bench.py --op clip4clip [--variant V] [--batch 1 8] [--frames 12]
                               [--repeats 5] [--reference PATH] [--markdown]

For each batch size it reports parameters, GFLOPs per clip (torch.utils.flop_counter), clips/s and
latency (median of timed repeats after a warm-up), and the peak resident memory the calls add on
top of the loaded model (sampled from /proc while the first call and the repeats run). The
model is the variant's full-size configuration with random weights (weights never change the
cost). With ``--reference PATH`` it also runs the original implementation from a checkout at
PATH with the same weights and input (where an adapter exists in benchmarks/references/), prints
the ratio and the largest difference between the two outputs (the adapter's ``max_abs_diff``, or
``embed_video(clip).<EMBEDDINGS_FIELD>`` against its timed call).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from vtzoo.benchmarking import PeakMemory, gflops, time_call, time_interleaved

HERE = Path(__file__).resolve().parent


@dataclass
class Figures:
    label: str
    batch: int
    params: int
    gflops_per_clip: float
    clips_per_s: float
    latency_ms: float
    peak_rss_mb: float


def measure(label: str, fn: Callable[[], Any], params: int, batch: int, repeats: int,
            timed: tuple[list[float], float] | None = None) -> Figures:
    """Figures of ``fn``; ``timed`` (times, memory) may come from :func:`time_interleaved`."""
    if timed is None:
        # the cold first call (the warm-up) shows what the activations add on top of the model
        with PeakMemory() as mem:
            times = time_call(fn, repeats)
        timed = (times, mem.peak - mem.base)
    times, memory = timed
    flops = gflops(fn)
    median = statistics.median(times)
    return Figures(label, batch, params, flops / batch, batch / median, median * 1e3, memory)


def main_task(op) -> Callable[[Any], Any]:
    from vtzoo.operators.base import VIDEO_CLASSIFICATION, VIDEO_EMBEDDING

    if VIDEO_EMBEDDING in op.tasks:
        return op.embed_video
    if VIDEO_CLASSIFICATION in op.tasks:
        return op.classify
    raise SystemExit(f"operator {op.name} has no video task to benchmark")


def load_reference(op_name: str):
    file = HERE / "references" / f"{op_name}.py"
    if not file.is_file():
        raise SystemExit(f"no reference adapter for {op_name} (expected {file})")
    spec = importlib.util.spec_from_file_location(f"vtzoo_bench_ref_{op_name}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> list[Figures]:
    import vtzoo

    torch.manual_seed(0)
    op = vtzoo.create(args.op, args.variant, weights="random")
    params = sum(p.numel() for p in op.model.parameters())
    task = main_task(op)
    results: list[Figures] = []
    reference = load_reference(op.name) if args.reference else None
    label = f"vtzoo {op.name}/{op.card.variant if op.card else ''}"
    for batch in args.batch:
        clip = op.example_video_input(batch, args.frames)
        ours_fn = lambda: task(clip)  # noqa: E731
        if reference is None:
            results.append(measure(label, ours_fn, params, batch, args.repeats))
            continue
        ref_fn, ref_params = reference.build(args.reference, op, clip)
        ours_timed, ref_timed = time_interleaved([ours_fn, ref_fn], args.repeats)
        results.append(measure(label, ours_fn, params, batch, args.repeats, ours_timed))
        results.append(measure("original", ref_fn, ref_params, batch, args.repeats, ref_timed))
        difference = _max_abs_diff(reference, op, clip, ref_fn)
        print(f"# batch {batch}: max |vtzoo - original| on {_compared(reference)} = {difference:.2e}")
    return results


def _compared(reference) -> str:
    return getattr(reference, "COMPARED", f"Embeddings.{getattr(reference, 'EMBEDDINGS_FIELD', 'pooled')}")


def _max_abs_diff(reference, op, clip: Any, ref_fn: Callable[[], Any]) -> float:
    """The adapter's own check, else ``embed_video(clip).<EMBEDDINGS_FIELD>`` against ``ref_fn()``."""
    if hasattr(reference, "max_abs_diff"):
        return reference.max_abs_diff(op, clip)
    with torch.inference_mode():
        ours = getattr(op.embed_video(clip), getattr(reference, "EMBEDDINGS_FIELD", "pooled"))
        theirs = ref_fn()
    return float((ours - theirs).abs().max())


def render(results: list[Figures], markdown: bool) -> str:
    head = ["implementation", "batch", "params (M)", "GFLOPs/clip", "clips/s", "latency ms (median)", "activation peak MB"]
    rows = [
        [r.label, str(r.batch), f"{r.params / 1e6:.2f}", f"{r.gflops_per_clip:.1f}", f"{r.clips_per_s:.2f}",
         f"{r.latency_ms:.0f}", f"{r.peak_rss_mb:.0f}"]
        for r in results
    ]
    pairs = [(results[i], results[i + 1]) for i in range(len(results) - 1) if results[i + 1].label == "original"]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [head, *rows]]
    for ours, theirs in pairs:
        lines.append(f"batch {ours.batch}: vtzoo / original throughput = {ours.clips_per_s / theirs.clips_per_s:.2f}x")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", required=True, help="operator name (or name/variant)")
    parser.add_argument("--variant", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the variant's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reference", default=None, help="path to a checkout of the original code")
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args)
    print(f"# {args.op} variant={args.variant or 'default'} frames={args.frames or 'default'} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(render(results, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
