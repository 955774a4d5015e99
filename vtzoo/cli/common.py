"""What the commands share: operator flags, pipeline loading, failure reports, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

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
    parser.add_argument("--set", dest="config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field of the variant (repeatable)")


def create_operator(args: argparse.Namespace):
    import vtzoo

    return vtzoo.create(args.op, args.variant, weights=args.weights, device=args.device, **parse_config(args.config))


def load_pipeline(spec: str, overrides: Sequence[str], db: str | None = None):
    """A catalog name or YAML file as a Pipeline, with ``STEP.KEY=VALUE`` overrides and the database."""
    from vtzoo.pipelines import Pipeline, PipelineSpec
    from vtzoo.pipelines.catalog import catalog_path

    pipeline_spec = PipelineSpec.from_yaml(catalog_path(spec))
    for pair in overrides:
        target, sep, value = pair.partition("=")
        step_name, dot, key = target.partition(".")
        if not sep or not dot:
            raise SystemExit(f"vtzoo: --set expects STEP.KEY=VALUE, got {pair!r}")
        pipeline_spec = pipeline_spec.override(step_name, **{key: parse_config([f"x={value}"])["x"]})
    if db is not None:
        pipeline_spec = pipeline_spec.with_database(db)
    return Pipeline.from_spec(pipeline_spec)


def report_run(result) -> None:
    for failure in result.failures:
        print(f"vtzoo: failed: {failure}", file=sys.stderr)
    if result.failures:
        print(f"vtzoo: {len(result.failures)} input(s) failed; the others finished", file=sys.stderr)


def report_failures(failures: dict[str, str]) -> None:
    for source, reason in failures.items():
        print(f"vtzoo: skipped {source}: {reason}", file=sys.stderr)
    if failures:
        print(f"vtzoo: {len(failures)} input(s) failed; the others finished", file=sys.stderr)


def jsonable(value: Any) -> Any:
    import torch

    from vtzoo.embeddings import Embeddings

    if isinstance(value, Embeddings):
        return {"pooled": value.pooled.tolist()}
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
