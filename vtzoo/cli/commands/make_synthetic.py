"""``vtzoo make-synthetic``: a generated video-text dataset for tests, demos and training proofs."""

from __future__ import annotations

import argparse

from vtzoo.cli.common import EXIT_OK, usage_error


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from vtzoo.datasets.synthetic import make_synthetic
    from vtzoo.errors import ConfigError

    try:
        root = make_synthetic(
            args.directory, count=args.count, size=args.size, frames=args.frames, fps=args.fps,
            captions_per_video=args.captions, multi_event=args.multi_event, seed=args.seed,
        )
    except ConfigError as exc:
        return usage_error("make-synthetic", exc)
    print(f"wrote {args.count} video(s) with captions, labels, segments and splits to {root}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-synthetic", help="write a generated dataset (moving shapes, varied captions) in the vtzoo layout")
    p.add_argument("directory")
    p.add_argument("--count", type=int, default=300, help="number of videos (default: %(default)s)")
    p.add_argument("--size", type=int, default=64, help="frame width and height in pixels (default: %(default)s)")
    p.add_argument("--frames", type=int, default=32, help="frames per video (default: %(default)s)")
    p.add_argument("--fps", type=int, default=8, help="frame rate (default: %(default)s)")
    p.add_argument("--captions", type=int, default=5, help="captions per video (default: %(default)s)")
    p.add_argument("--multi-event", type=float, default=0.25,
                   help="fraction of videos with two events, each with its segment (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_synthetic)
