"""``vtzoo index-info``: the collections of an index, their sizes and fingerprints."""

from __future__ import annotations

import argparse
import json


def cmd_index_info(args: argparse.Namespace) -> int:
    from vtzoo.pipelines.index import VectorIndex

    index = VectorIndex(args.db, create=False)
    collections = index.info()
    if args.json:
        print(json.dumps({"collections": collections}))
        return 0
    print(f"# {args.db} ({index.backend})")
    for c in collections:
        print(f"{c['name']}: {c['rows']} row(s), {c['dim']}-d, fingerprint {c['fingerprint'] or '(none recorded)'}")
    if not collections:
        print("(no collections)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index-info", help="list the collections of an index (rows, dimension, fingerprint)")
    p.add_argument("--db", required=True, help="index folder, Milvus Lite file or Milvus URI")
    p.add_argument("--json", action="store_true", help='print {"collections": [{"name", "rows", "fingerprint", "dim"}]}')
    p.set_defaults(func=cmd_index_info)
