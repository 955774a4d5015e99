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
    sub = parser.add_subparsers(dest="command", required=True)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vtzoo.errors import VtzooError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (VtzooError, FileNotFoundError) as exc:
        print(f"vtzoo {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
