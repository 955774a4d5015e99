"""The ``vtzoo`` command line.

Each command is a module in :mod:`vtzoo.cli.commands` with a ``register(subparsers)`` function;
the parser is assembled from whatever modules are there, so a new command touches no central file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

# Pipelines decode in threads beside torch's OpenMP workers; workers that busy-wait between
# parallel regions would take the decoders' cores (measured: pipeline/model-only throughput
# 0.85 -> 0.92 on 2 cores). Only effective before torch is imported, hence here, at the top.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# EXIT_USAGE: a bad argument, file or setting, found before anything was computed
from vtzoo.cli.common import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE  # noqa: E402,F401  (re-exported)


def build_parser() -> argparse.ArgumentParser:
    from vtzoo.cli import commands

    parser = argparse.ArgumentParser(prog="vtzoo", description="Video-text operators: embed, search, verify.")
    parser.add_argument("-v", "--verbose", action="store_true", help="print errors in full (key listings, ...)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
    return parser


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a bad argument, file or setting (exit 2) rather than work that failed."""
    from vtzoo.errors import ConfigError, InputError, UnknownOperator, UsageError
    from vtzoo.registry.errors import WeightsError

    return (UsageError, WeightsError, ConfigError, InputError, UnknownOperator, FileNotFoundError)


def _one_line(exc: BaseException, verbose: bool) -> str:
    """The message's first line; the rest (key listings, ...) only with --verbose."""
    text = str(exc).strip()
    first, _, rest = text.partition("\n")
    if verbose or not rest:
        return text
    return f"{first} ({rest.count(chr(10)) + 1} more line(s) of detail: vtzoo --verbose ...)"


def main(argv: Sequence[str] | None = None) -> int:
    from vtzoo.errors import VtzooError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _usage_errors() as exc:
        print(f"vtzoo {args.command}: error: {_one_line(exc, args.verbose)}", file=sys.stderr)
        return EXIT_USAGE
    except VtzooError as exc:
        print(f"vtzoo {args.command}: error: {_one_line(exc, args.verbose)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
