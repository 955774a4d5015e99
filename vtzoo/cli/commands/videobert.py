"""``vtzoo videobert-vocab``: fit VideoBERT's visual vocabulary on a folder's clip features."""

from __future__ import annotations

import argparse
import sys

from vtzoo.cli.common import EXIT_OK, EXIT_PARTIAL


def cmd_videobert_vocab(args: argparse.Namespace) -> int:
    from pathlib import Path

    import vtzoo
    from vtzoo.video.discovery import discover_videos
    from vtzoo.operators.videobert.visual_words import fit_on_videos

    folder = Path(args.directory)
    videos = discover_videos(folder / "videos" if (folder / "videos").is_dir() else folder).videos
    op = vtzoo.create("videobert", args.variant, weights="random", seed=args.seed, clip_size=args.clip_size,
                      s3d_weights=args.s3d_weights)
    vocabulary, failures = fit_on_videos(op.clips, videos, args.branching, args.levels, seed=args.seed,
                                         progress=not args.quiet)
    for path, reason in failures.items():
        print(f"vtzoo: skipped {path}: {reason}", file=sys.stderr)
    vocabulary.save(args.out)
    print(f"fitted {vocabulary.size} visual words on {len(videos) - len(failures)} video(s) "
          f"({vocabulary.extractor}) -> {args.out}")
    return EXIT_PARTIAL if failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("videobert-vocab", help="fit VideoBERT's visual vocabulary (hierarchical k-means) on clip features")
    p.add_argument("directory", help="a folder of videos, or a dataset folder with videos/")
    p.add_argument("--out", required=True, help="where the vocabulary goes (.safetensors)")
    p.add_argument("--branching", type=int, default=12)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--variant", default=None)
    p.add_argument("--s3d-weights", default=None, help="S3D weights (default: seeded random)")
    p.add_argument("--clip-size", type=int, default=224, help="S3D input size in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_videobert_vocab)
