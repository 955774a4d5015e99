"""``vtzoo embed``: videos to an embeddings file."""

from __future__ import annotations

import argparse
import json
import sys

from vtzoo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    add_operator_args,
    create_operator,
    report_failures,
)


def cmd_embed(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from vtzoo.batching import embed_videos
    from vtzoo.embeddings import Embeddings

    op = create_operator(args)
    result = embed_videos(op, args.videos, batch_size=args.batch_size, progress=not args.quiet)
    report_failures(result.failures)
    done = [v for v in args.videos if v in result.embeddings]
    if not done:
        print("vtzoo embed: no video could be embedded", file=sys.stderr)
        return EXIT_FAILED
    merged = Embeddings.concat([result.embeddings[v] for v in done])
    tensors = {"pooled": merged.pooled.contiguous()}
    if merged.tokens is not None:
        tensors["tokens"] = merged.tokens.contiguous()
        tensors["mask"] = merged.mask.contiguous()
    metadata = {"operator": op.name, "variant": op.card.variant if op.card else "", "videos": json.dumps(done)}
    save_file(tensors, args.output, metadata=metadata)
    print(f"wrote {len(done)} embeddings ({tuple(merged.pooled.shape)}) to {args.output}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed videos into a .safetensors file")
    p.add_argument("videos", nargs="+")
    p.add_argument("-o", "--output", default="embeddings.safetensors")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_operator_args(p)
    p.set_defaults(func=cmd_embed)
