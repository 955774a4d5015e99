"""MoViNet benchmarks: whole clips, streaming frame by frame, and the reference port side by side.

    python -m vtzoo.operators.movinet.benchmark --variant a0-stream --frames 50 [--reference PATH]

For stream variants it reports frames/s and the median per-frame latency of ``step`` on single
frames (the published streaming use); for every variant clips/s and GFLOPs per clip
(``torch.utils.flop_counter``). ``--reference PATH`` points at a checkout of
Atze00/MoViNet-pytorch; its ``MoViNet`` is built from vtzoo's architecture table (the port's
``config.py`` needs fvcore, ``models.py`` does not), loaded with the same weights and timed on
the same input.

The functions ``build(path, op, clip)`` and ``max_abs_diff(op, clip)`` follow the reference-adapter
interface of ``benchmarks/bench.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Callable

import torch

from vtzoo.benchmarking import gflops, time_call


def _port_cfg(config) -> SimpleNamespace:
    """The attribute tree the port's ``MoViNet`` reads, from vtzoo's architecture table."""
    arch = config.architecture
    stem = arch["stem"]
    conv1 = SimpleNamespace(input_channels=3, out_channels=stem["out_channels"], kernel_size=tuple(stem["kernel_size"]),
                            stride=tuple(stem["stride"]), padding=tuple(stem["padding"]))
    blocks, channels = [], stem["out_channels"]
    for stage in arch["stages"]:
        row = []
        for out, expanded, kernel, stride, padding, padding_avg in stage:
            row.append(SimpleNamespace(input_channels=channels, out_channels=out, expanded_channels=expanded,
                                       kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(padding),
                                       padding_avg=tuple(padding_avg)))
            channels = out
        blocks.append(row)
    conv7 = SimpleNamespace(input_channels=channels, out_channels=arch["head_channels"], kernel_size=(1, 1, 1),
                            stride=(1, 1, 1), padding=(0, 0, 0))
    return SimpleNamespace(name=config.model_id.upper(), conv1=conv1, blocks=blocks, conv7=conv7,
                           dense9=SimpleNamespace(hidden_dim=config.hidden_dim))


def build_reference_model(path: str, op) -> torch.nn.Module:
    """The port's MoViNet with ``op``'s weights (same key names), eval mode."""
    if path not in sys.path:
        sys.path.insert(0, path)
    from movinets.models import MoViNet  # the port's own module, from the checkout at `path`

    c = op.config
    if c.use_positional_encoding:
        raise SystemExit("the reference port has no positional encoding (A3-A5 stream): nothing to compare")
    model = MoViNet(_port_cfg(c), causal=c.causal, pretrained=False, num_classes=c.num_classes,
                    conv_type=c.conv_type, tf_like=c.tf_like)
    model.load_state_dict(op.model.state_dict(), strict=True)
    return model.eval()


def build(path: str, op, clip: torch.Tensor) -> tuple[Callable[[], Any], int]:
    """bench.py adapter: a zero-argument call of the port on ``clip`` and its parameter count."""
    model = build_reference_model(path, op)
    _REFERENCE[id(op)] = model

    def call():
        if op.config.causal:
            model.clean_activation_buffers()
        return model(clip)

    return call, sum(p.numel() for p in model.parameters())


_REFERENCE: dict[int, torch.nn.Module] = {}


def max_abs_diff(op, clip: torch.Tensor, path: str | None = None) -> float:
    """Largest |vtzoo - port| logit difference on ``clip`` (after ``build`` has run)."""
    model = _REFERENCE.get(id(op))
    if model is None:
        model = build_reference_model(path or sys.path[0], op)
    with torch.inference_mode():
        if op.config.causal:
            model.clean_activation_buffers()
        theirs = model(clip)
        ours = op.model(clip)
    return float((theirs - ours).abs().max())


# -- measurements ---------------------------------------------------------------------------------
def gflops_per_clip(op, frames: int) -> float:
    clip = op.example_video_input(1, frames)
    return gflops(lambda: op.model(clip))


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    return statistics.median(time_call(fn, repeats, warmup))


def stream_per_frame(op, frames: int) -> list[float]:
    """Seconds per single-frame ``step`` over one stream of ``frames`` frames."""
    video = op.example_video_input(1, frames)
    times = []
    with torch.inference_mode():
        state = op.init_state(1)
        op.step(video[:, :, :1], op.init_state(1))  # warm-up
        for t in range(frames):
            start = time.perf_counter()
            _, state = op.step(video[:, :, t : t + 1], state)
            times.append(time.perf_counter() - start)
    return times


def reference_stream_per_frame(model: torch.nn.Module, op, frames: int) -> list[float]:
    video = op.example_video_input(1, frames)
    times = []
    with torch.inference_mode():
        model.clean_activation_buffers()
        model(video[:, :, :1])
        model.clean_activation_buffers()
        for t in range(frames):
            start = time.perf_counter()
            model(video[:, :, t : t + 1])
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    import vtzoo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="a0-stream")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the card's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reference", default=None, help="checkout of Atze00/MoViNet-pytorch")
    parser.add_argument("--no-flops", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    op = vtzoo.create("movinet", args.variant, weights="random")
    frames = args.frames or int(op.preprocessing.get("frames", 50))
    size = op.resolution
    clip = op.example_video_input(1, frames)
    rows = [f"# movinet/{args.variant}: {frames} x {size} x {size}, threads={torch.get_num_threads()}, torch={torch.__version__}"]
    params = sum(p.numel() for p in op.model.parameters())
    flops = float("nan") if args.no_flops else gflops_per_clip(op, frames)
    seconds = median_seconds(lambda: op.model(clip), args.repeats)
    rows.append(f"vtzoo   params {params / 1e6:.2f} M  GFLOPs/clip {flops:.2f}  clips/s {1 / seconds:.3f}  latency {seconds * 1e3:.0f} ms")
    reference = build_reference_model(args.reference, op) if args.reference else None
    if reference is not None:
        def ref_call():
            if op.config.causal:
                reference.clean_activation_buffers()
            return reference(clip)

        ref_seconds = median_seconds(ref_call, args.repeats)
        with torch.inference_mode():
            diff = float((ref_call() - op.model(clip)).abs().max())
        rows.append(f"port    clips/s {1 / ref_seconds:.3f}  latency {ref_seconds * 1e3:.0f} ms  "
                    f"(vtzoo/port throughput {ref_seconds / seconds:.2f}x, max |logit diff| {diff:.1e})")
    if op.config.causal:
        per_frame = stream_per_frame(op, frames)
        median = statistics.median(per_frame)
        rows.append(f"vtzoo stream: {1 / median:.1f} frames/s, per-frame latency median {median * 1e3:.1f} ms")
        if reference is not None:
            ref_median = statistics.median(reference_stream_per_frame(reference, op, frames))
            rows.append(f"port  stream: {1 / ref_median:.1f} frames/s, per-frame latency median {ref_median * 1e3:.1f} ms")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
