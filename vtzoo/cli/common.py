"""What the commands share: operator flags, pipeline loading, failure reports, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from vtzoo.errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def usage_error(command: str, error: Exception) -> int:
    """Report a bad argument, file or setting found before any work started (exit status 2)."""
    print(f"vtzoo {command}: error: {error}", file=sys.stderr)
    return EXIT_USAGE


def parse_config(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values parse as JSON when they can (numbers, lists, booleans)."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"vtzoo: --set expects key=value, got {pair!r}")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def add_operator_args(parser: argparse.ArgumentParser, default_op: str | None = "clip4clip") -> None:
    parser.add_argument("--op", default=default_op, help="operator name, or name/variant (default: %(default)s)")
    parser.add_argument("--variant", default=None, help="weight card variant (default: the operator's default)")
    parser.add_argument(
        "--weights",
        default=None,
        help="card name, hf://org/repo@rev, a local folder, a checkpoint file, or 'random' (default: the card's)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16", "auto"),
                        help="numeric precision (default: auto, bf16 where the device computes it natively)")
    parser.add_argument("--seed", type=int, default=None, help="seed of weights='random' (default: 0)")
    parser.add_argument("--set", dest="config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field or option of the operator (repeatable)")


def operator_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """``vtzoo.create`` keyword arguments from the operator flags (only those given)."""
    given = {"weights": args.weights, "precision": args.precision, "seed": args.seed}
    arguments = {k: v for k, v in given.items() if v is not None}
    if args.device != "cpu":
        arguments["device"] = args.device
    return {**arguments, **parse_config(args.config)}


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, before any model is built."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"--device {device}: not a device name ({exc})") from None
    if kind == "cuda" and not torch.cuda.is_available():
        built = "" if torch.version.cuda else "; this PyTorch is built without CUDA"
        raise UsageError(f"--device {device}: no CUDA device is available (torch.cuda.is_available() is False{built})")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: the MPS backend is not available on this machine")


def check_output(path: str | None, flag: str = "-o") -> None:
    """Refuse an output file that cannot be written, before the work that would fill it."""
    if path is None:
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a directory, not a file")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {path}: the folder {folder} is not writable")


def create_operator(args: argparse.Namespace):
    import vtzoo

    check_device(args.device)  # a one-line error naming the flag, before any weight is read
    return vtzoo.create(args.op, args.variant, **operator_arguments(args))


def load_spec(spec: str, overrides: Sequence[str], db: str | None = None):
    """A catalog name or YAML file as a PipelineSpec, with ``STEP.KEY=VALUE`` overrides and the database."""
    from vtzoo.pipelines import PipelineSpec
    from vtzoo.pipelines.catalog import catalog_path

    pipeline_spec = PipelineSpec.from_yaml(catalog_path(spec))
    for pair in overrides:
        target, sep, value = pair.partition("=")
        step_name, dot, key = target.partition(".")
        if not sep or not dot:
            raise SystemExit(f"vtzoo: --set expects STEP.KEY=VALUE, got {pair!r}")
        pipeline_spec = pipeline_spec.override(step_name, **{key: parse_config([f"x={value}"])["x"]})
    return pipeline_spec.with_database(db) if db is not None else pipeline_spec


def load_pipeline(spec: str, overrides: Sequence[str], db: str | None = None):
    """:func:`load_spec` as a ready Pipeline."""
    from vtzoo.pipelines import Pipeline

    return Pipeline.from_spec(load_spec(spec, overrides, db))


def report_run(result) -> None:
    for failure in result.failures:
        print(f"vtzoo: failed: {failure}", file=sys.stderr)
    if result.failures:
        print(f"vtzoo: {len(result.failures)} input(s) failed; the others finished", file=sys.stderr)


def report_not_videos(skipped: dict, action: str) -> None:
    """One line per file of a folder that was not taken as a video, with the reason."""
    for path, reason in skipped.items():
        print(f"vtzoo: not a video, not {action}: {path}: {reason}", file=sys.stderr)


def why_no_rows(result, inputs: int) -> str:
    """Why a run produced no output row: its inputs failed, or its filters dropped them."""
    failed = len({failure.index for failure in result.failures})
    if failed == inputs:
        return f"every input ({inputs}) failed"
    if failed:
        return f"{failed} of {inputs} input(s) failed and the filters dropped the others"
    return f"the pipeline's filters dropped every input ({inputs})"


def report_failures(failures: dict[str, str]) -> None:
    for source, reason in failures.items():
        print(f"vtzoo: skipped {source}: {reason}", file=sys.stderr)
    if failures:
        print(f"vtzoo: {len(failures)} input(s) failed; the others finished", file=sys.stderr)


def jsonable(value: Any, full: bool = False) -> Any:
    """A pipeline row as JSON. Embeddings give ``pooled``; with ``full`` also ``tokens``, ``mask``
    and ``provenance``."""
    import torch

    from vtzoo.embeddings import Embeddings
    from vtzoo.exports import jsonable as plain

    if isinstance(value, Embeddings):
        out = {"pooled": value.pooled.tolist()}
        if full:
            if value.tokens is not None:
                out.update(tokens=value.tokens.tolist(), mask=value.mask.tolist())
            if "provenance" in value.extras:
                out["provenance"] = plain(value.extras["provenance"])
        return out
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v, full) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, full) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
