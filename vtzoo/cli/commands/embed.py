"""``vtzoo embed``: videos to an embeddings file."""

from __future__ import annotations

import argparse
import sys

from vtzoo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    add_operator_args,
    check_output,
    create_operator,
    parse_config,
    report_failures,
)


def cmd_embed(args: argparse.Namespace) -> int:
    from vtzoo.batching import embed_videos
    from vtzoo.embeddings import Embeddings
    from vtzoo.exports import check_export_path, write_embeddings

    check_output(args.output)
    check_export_path(args.output)
    op = create_operator(args)
    result = embed_videos(op, args.videos, batch_size=args.batch_size, progress=not args.quiet)
    report_failures(result.failures)
    done = [v for v in args.videos if v in result.embeddings]
    if not done:
        print("vtzoo embed: no video could be embedded", file=sys.stderr)
        return EXIT_FAILED
    merged = Embeddings.concat([result.embeddings[v] for v in done])
    write_embeddings(args.output, done, merged, made_by(op, args))
    print(f"wrote {len(done)} embeddings ({tuple(merged.pooled.shape)}) to {args.output}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def made_by(op, args: argparse.Namespace) -> dict:
    """What an embeddings file records about the operator that made it."""
    import vtzoo

    card = op.card
    return {
        "operator": op.name,
        "variant": op.variant,
        "weights": args.weights or (f"card {card.name}" if card is not None else None),
        "seed": op.options.seed,
        "precision": op.precision,
        "fingerprint": op.fingerprint,
        "config": parse_config(args.config),
        "vtzoo": vtzoo.__version__,
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed videos into a file (.safetensors, .npy, .npz, .parquet or .jsonl)")
    p.add_argument("videos", nargs="+")
    p.add_argument("-o", "--output", default="embeddings.safetensors",
                   help="the format follows the suffix: .safetensors, .npy (+ .npy.json), .npz, .parquet, .jsonl")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_operator_args(p)
    p.set_defaults(func=cmd_embed)
