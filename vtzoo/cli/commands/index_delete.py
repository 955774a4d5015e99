"""``vtzoo index-delete``: remove rows of a collection by file or by filter expression."""

from __future__ import annotations

import argparse


def cmd_index_delete(args: argparse.Namespace) -> int:
    from vtzoo.pipelines.index import VectorIndex

    if not args.path and not args.filter:
        raise SystemExit("vtzoo index-delete: give --path FILE (repeatable) and/or --filter EXPR")
    index = VectorIndex(args.db, create=False)
    removed = 0
    for path in args.path or [None]:
        removed += index.delete(args.collection, path=path, filter=args.filter or "")
    print(f"deleted {removed} row(s) from {args.collection}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index-delete", help="delete rows of a collection by file path or filter")
    p.add_argument("--db", required=True)
    p.add_argument("--collection", required=True, help="collection name (see vtzoo index-info)")
    p.add_argument("--path", action="append", default=[], help="delete every row of this video file (repeatable)")
    p.add_argument("--filter", default=None, help='a filter expression, e.g. \'path like "/videos/old/%%"\'')
    p.set_defaults(func=cmd_index_delete)
