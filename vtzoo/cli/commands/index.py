"""``vtzoo index``: a folder of videos into a vector database."""

from __future__ import annotations

import argparse

import sys

from vtzoo.cli.common import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, load_pipeline, report_not_videos, report_run


def cmd_index(args: argparse.Namespace) -> int:
    from vtzoo.errors import UsageError
    from vtzoo.video.discovery import discover_videos

    discovery = discover_videos(args.directory)
    report_not_videos(discovery.skipped, "indexed")
    if not discovery.videos:
        raise UsageError(f"no video in {args.directory} ({len(discovery.skipped)} file(s) looked at, none holds a video stream)")
    pipe = load_pipeline(args.pipeline, args.set, db=args.db)
    videos = [str(p) for p in discovery.videos]
    result = pipe.run(videos, job_store=args.job_store, progress=not args.quiet)
    report_run(result)
    if not result.rows:
        print(f"vtzoo index: nothing was indexed: the {len(videos)} video(s) failed", file=sys.stderr)
        return EXIT_FAILED
    print(f"indexed {len(result.rows)} item(s) from {len(videos)} video(s) into {args.db or 'the spec database'}"
          f"{f' ({result.resumed} already done)' if result.resumed else ''}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index the videos of a folder into a vector database")
    p.add_argument("directory")
    p.add_argument("--pipeline", default="text_video_index", help="index spec: catalog name or YAML file")
    p.add_argument("--db", default=None, help="Milvus Lite file or Milvus URI (default: the spec's, ./vtzoo.db)")
    p.add_argument("--job-store", default=None, help="SQLite file that makes the job resumable")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE", help="override a step parameter")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_index)
