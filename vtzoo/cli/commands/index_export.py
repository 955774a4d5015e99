"""``vtzoo index-export``: a collection to a Parquet file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_index_export(args: argparse.Namespace) -> int:
    from vtzoo.pipelines.index import VectorIndex

    target = Path(args.output)
    if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):  # before reading any row
        raise SystemExit(f"vtzoo index-export: {target.parent} does not exist or is not writable")
    index = VectorIndex(args.db, create=False)
    rows = index.export_parquet(args.collection, target, with_vectors=not args.no_vectors)
    print(f"exported {rows} row(s) of {args.collection} to {target}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index-export", help="export a collection to Parquet")
    p.add_argument("--db", required=True)
    p.add_argument("--collection", required=True)
    p.add_argument("-o", "--output", required=True, help="the .parquet file to write")
    p.add_argument("--no-vectors", action="store_true", help="metadata only")
    p.set_defaults(func=cmd_index_export)
