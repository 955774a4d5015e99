"""One benchmark entry point for every operator: vtzoo in each precision and backend, and the
original code in float32 and under bf16 autocast, on the same weights and input, in one run.

    python benchmarks/bench.py --op clip4clip [--variant V] --batch 4 [8 ...] [--frames 12]
           [--precision fp32 bf16] [--backend torch openvino] [--compile]
           [--reference PATH] [--reference-precision fp32 bf16]
           [--stream] [--repeats 5] [--threads 2] [--json FILE] [--markdown]

Every row of one invocation is timed in alternation (round-robin over the rows, after one
warm-up call each), so a noisy machine slows them alike; the figures are the medians. The model
is the variant's full-size configuration with random weights from ``--seed`` (weights never
change the cost). vtzoo float32 always runs: every row's ``min_cos_vs_fp32`` is the smallest
cosine between its output rows and vtzoo float32's on the same input. With ``--reference PATH``
the original implementation (a checkout at PATH; adapters in benchmarks/references/) is built
with random weights, its state dict converted into vtzoo, and timed beside it; under
``--reference-precision bf16`` it runs inside ``torch.autocast("cpu", torch.bfloat16)``.

``--stream`` (stream models: MoViNet) times a whole clip fed frame by frame through ``step``.

``--json FILE`` appends one JSON object per row: ``implementation``, ``operator``, ``variant``,
``batch``, ``frames``, ``precision``, ``backend``, ``clips_per_s``, ``latency_ms``,
``gflops_per_clip``, ``min_cos_vs_fp32``, ``ratio_vs_original_fp32`` (null without a reference),
``warmup_s`` (the first call: with ``--compile`` the compilation), ``repeats``, ``threads``,
``torch``, ``stream``, ``task``, ``load_average`` (the machine's 1-minute load average right after
the timing: other jobs on a shared machine show there), and ``frames_per_s`` for stream rows.

``--text TOKENS`` times the text tower instead, on ``--batch`` random sequences of TOKENS ids
(tokenisation excluded).
"""

from __future__ import annotations

import os

# torch's OpenMP workers wait passively: on a shared machine spinning workers distort the timings
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import importlib.util
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from vtzoo.benchmarking import gflops

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """One timed implementation; ``call()`` returns the output compared against vtzoo fp32."""

    implementation: str
    precision: str
    backend: str
    call: Callable[[], Any] = field(repr=False)
    times: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    output: torch.Tensor | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def load_reference(op_name: str):
    file = HERE / "references" / f"{op_name}.py"
    if not file.is_file():
        raise SystemExit(f"no reference adapter for {op_name} (expected {file})")
    spec = importlib.util.spec_from_file_location(f"vtzoo_bench_ref_{op_name}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- what is timed ----------------------------------------------------------------------------------
def vtzoo_call(op, clip: Any, stream: bool, field_name: str) -> Callable[[], torch.Tensor]:
    """The operator's main video task on ``clip``, returning the compared tensor."""
    if stream:
        return lambda: stream_pooled(op, clip)
    from vtzoo.operators.base import VIDEO_EMBEDDING

    if VIDEO_EMBEDDING not in op.tasks:
        raise SystemExit(f"operator {op.name} has no video embedding to benchmark")
    return lambda: getattr(op.embed_video(clip), field_name)


def text_inputs(op, batch: int, tokens: int) -> dict[str, torch.Tensor]:
    """``batch`` random token sequences of ``tokens`` ids (no padding) in the vocabulary of the text tower."""
    vocab = text_vocab_size(op)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab - 2, (batch, tokens), generator=generator)
    if op.name in ("clip4clip", "drl"):
        ids[:, -1] = vocab - 1  # CLIP pools at the largest id (its end-of-text token)
    return {"ids": ids, "mask": torch.ones_like(ids)}


def text_vocab_size(op) -> int:
    model = op.model
    for path in ("clip.text_model.embeddings.token_embedding", "text_model.embeddings.word_embeddings",
                 "txt_bert.embeddings.word_embeddings", "text_encoder.embeddings.word_embeddings"):
        module = model
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module.num_embeddings
    raise SystemExit(f"--text: no text tower known for {op.name}")


def text_call(op, inputs: dict[str, torch.Tensor]) -> Callable[[], torch.Tensor]:
    """The family's text tower on token ids (tokenisation is not timed): its pooled output."""
    ids, mask = inputs["ids"], inputs["mask"]
    model = op.model
    calls = {
        "clip4clip": lambda: model.encode_text(ids).pooled,
        "drl": lambda: model.encode_text(ids)[:, -1],
        "frozen_in_time": lambda: model.encode_text(ids, mask),
        "mdmmt": lambda: model.encode_text(ids, mask).expert_embeddings.flatten(1),
        "videoclip": lambda: model.forward_text(ids, mask).pooled,
    }
    if op.name not in calls:
        raise SystemExit(f"--text: no text tower known for {op.name}")
    return calls[op.name]


def stream_pooled(op, clip: torch.Tensor) -> torch.Tensor:
    """Feed ``clip`` (B, 3, T, H, W) frame by frame; the pooled features after the last frame."""
    state = op.init_state(clip.shape[0], *clip.shape[-2:])
    with torch.inference_mode():
        for t in range(clip.shape[2]):
            logits, pooled, state = op.model.step(clip[:, :, t : t + 1], state)
    return pooled


def under_autocast(fn: Callable[[], Any], precision: str) -> Callable[[], Any]:
    if precision == "fp32":
        return fn

    def call():
        with torch.autocast("cpu", torch.bfloat16):
            return fn()

    return call


def as_rows(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach().float()
    return tensor.reshape(-1, tensor.shape[-1]) if tensor.dim() > 1 else tensor[None]


def min_cosine(output: torch.Tensor, reference: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(as_rows(output), as_rows(reference), dim=-1).min())


# -- timing -----------------------------------------------------------------------------------------
def time_alternating(rows: list[Row], repeats: int) -> None:
    """One warm-up call per row (its output kept), then ``repeats`` rounds over all rows."""
    with torch.inference_mode():
        for row in rows:
            start = time.perf_counter()
            row.output = row.call()
            row.warmup_s = time.perf_counter() - start
        for _ in range(repeats):
            for row in rows:
                start = time.perf_counter()
                row.call()
                row.times.append(time.perf_counter() - start)


# -- building the rows ------------------------------------------------------------------------------
def vtzoo_rows(base, clip: Any, args: argparse.Namespace, field_name: str) -> list[Row]:
    """vtzoo float32 first (the reference of every cosine), then every precision x backend asked."""
    combos = [("fp32", "torch")]
    backends = [b for b in args.backend]
    for precision in args.precision:
        for backend in backends:
            if (precision, backend) not in combos:
                combos.append((precision, backend))
    if args.compile:
        combos += [(p, "torch.compile") for p in args.precision]
    rows = []
    for precision, backend in combos:
        op = base if (precision, backend) == ("fp32", "torch") else copy.deepcopy(base)
        if op is not base:
            op.configure(precision, backend="torch" if backend.startswith("torch") else backend,
                         compile=backend == "torch.compile")
        call = text_call(op, clip) if args.text else vtzoo_call(op, clip, args.stream, field_name)
        rows.append(Row("vtzoo", precision, backend, call))
    return rows


def reference_rows(reference, args: argparse.Namespace, base, clip: Any) -> list[Row]:
    build = getattr(reference, "build_stream", None) if args.stream else reference.build
    if build is None:
        raise SystemExit(f"the {base.name} reference adapter has no stream mode")
    ref_fn, _ = build(args.reference, base, clip)
    precisions = ["fp32"] + [p for p in args.reference_precision if p != "fp32"]
    return [Row("original", p, "torch", under_autocast(ref_fn, p)) for p in precisions]


def make_operator(args: argparse.Namespace):
    import vtzoo

    return vtzoo.create(args.op, args.variant, weights="random", precision="fp32", **seed_option(args.seed))


def seed_option(seed: int) -> dict[str, int]:
    """``seed=`` where the operator shell takes it; else the global RNG is seeded."""
    import inspect

    import vtzoo

    if "seed" in inspect.signature(vtzoo.create).parameters:
        return {"seed": seed}
    torch.manual_seed(seed)
    return {}


def run_batch(args: argparse.Namespace, base, reference, batch: int) -> list[dict[str, Any]]:
    if args.text:
        clip = text_inputs(base, batch, args.text)
    elif args.stream:
        clip = stream_clip(base, batch, args.frames)
    else:
        clip = base.example_video_input(batch, args.frames)
    field_name = getattr(reference, "EMBEDDINGS_FIELD", "pooled") if reference is not None else "pooled"
    if args.stream:
        field_name = "pooled"
    # the reference adapter loads the original's weights into `base` before the copies are made
    refs = reference_rows(reference, args, base, clip) if reference is not None else []
    rows = vtzoo_rows(base, clip, args, field_name) + refs
    flops = gflops(rows[0].call) / batch
    time_alternating(rows, args.repeats)
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    fp32, original = rows[0], next((r for r in rows if r.implementation == "original"), None)
    # what the original returns, as vtzoo fp32 computes it (the adapter says, else the same field)
    theirs = reference.vtzoo_output(base, clip, args.stream) if hasattr(reference, "vtzoo_output") else fp32.output
    frames = args.text if args.text else frames_of(base, clip)
    out = []
    for row in rows:
        target = theirs if row.implementation == "original" else fp32.output
        clips_per_s = batch / row.median
        record = {
            "implementation": row.implementation, "operator": base.name,
            "variant": base.card.variant if base.card else args.variant, "batch": batch, "frames": frames,
            "precision": row.precision, "backend": row.backend, "clips_per_s": round(clips_per_s, 4),
            "latency_ms": round(row.median * 1e3, 2), "gflops_per_clip": round(flops, 3),
            "min_cos_vs_fp32": round(min_cosine(row.output, target), 7),
            "ratio_vs_original_fp32": None if original is None else round(original.median / row.median, 3),
            "warmup_s": round(row.warmup_s, 2), "repeats": args.repeats, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "stream": bool(args.stream), "task": "text" if args.text else "video",
            "load_average": None if load_average is None else round(load_average, 2),
        }
        if args.stream:
            record["frames_per_s"] = round(frames * clips_per_s, 2)
        out.append(record)
    return out


def stream_clip(op, batch: int, frames: int | None) -> torch.Tensor:
    if not getattr(op.config, "causal", False):
        raise SystemExit(f"--stream needs a stream variant (got {op.name}/{op.card.variant if op.card else ''})")
    return op.example_video_input(batch, frames)


def frames_of(op, clip: Any) -> int | None:
    """Frames per clip of the timed input (None for feature inputs without a time axis)."""
    if isinstance(clip, (list, tuple)) and clip and isinstance(clip[0], torch.Tensor) and clip[0].dim() == 4:
        return int(clip[0].shape[0])  # decoded clips (T, 3, H, W)
    if isinstance(clip, dict):
        clip = clip.get("video", next(iter(clip.values())))
    if not isinstance(clip, torch.Tensor) or clip.dim() != 5:
        return None
    return int(clip.shape[2] if clip.shape[1] == 3 and clip.shape[2] != 3 else clip.shape[1])


# -- output -----------------------------------------------------------------------------------------
def render(records: list[dict[str, Any]], markdown: bool) -> str:
    head = ["implementation", "precision", "backend", "batch", "frames", "clips/s", "latency ms", "GFLOPs/clip",
            "min cos vs fp32", "x original fp32", "warm-up s"]
    rows = [[r["implementation"], r["precision"], r["backend"], str(r["batch"]), str(r["frames"]),
             f"{r['clips_per_s']:.3f}", f"{r['latency_ms']:.0f}", f"{r['gflops_per_clip']:.1f}",
             f"{r['min_cos_vs_fp32']:.6f}",
             "" if r["ratio_vs_original_fp32"] is None else f"{r['ratio_vs_original_fp32']:.2f}x",
             f"{r['warmup_s']:.1f}"] for r in records]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [head, *rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", required=True, help="operator name (or name/variant)")
    parser.add_argument("--variant", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the variant's)")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--backend", nargs="+", default=["torch"], choices=["torch", "openvino"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile rows")
    parser.add_argument("--reference", default=None, help="path to a checkout of the original code")
    parser.add_argument("--reference-precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--stream", action="store_true", help="stream models: feed the clip frame by frame")
    parser.add_argument("--text", type=int, default=None, metavar="TOKENS",
                        help="time the text tower on --batch sequences of TOKENS token ids instead ('frames' = TOKENS)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="append one JSON object per row to this file")
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = make_operator(args)
    reference = load_reference(base.name) if args.reference else None
    records = []
    for batch in args.batch:
        records += run_batch(args, base, reference, batch)
    print(f"# {base.name}/{records[0]['variant']} threads={torch.get_num_threads()} torch={torch.__version__}"
          f"{' stream' if args.stream else ''}")
    print(render(records, args.markdown))
    if args.json:
        with open(args.json, "a") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
