"""``vtzoo demo``: the main job."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from vtzoo.demo import run_demo

    return run_demo(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: index sample videos into Milvus Lite, then search them by text")
    p.add_argument("--dir", default="samples/videos", help="where the sample videos go (default: %(default)s)")
    p.add_argument("--db", default=None, help="index database (default: vtzoo.db beside the videos' folder)")
    p.add_argument("--query", action="append", default=None, help="text query (repeatable)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--weights", default=None, help="CLIP4Clip weights (default: the card's, else random)")
    p.set_defaults(func=cmd_demo)
