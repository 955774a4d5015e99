"""``vtzoo index``: a folder of videos into a vector database, resumable, in-process or on Ray."""

from __future__ import annotations

import argparse
import sys

from vtzoo.cli.common import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, load_pipeline, report_not_videos, report_run

EXIT_USAGE = 2


def cmd_index(args: argparse.Namespace) -> int:
    from vtzoo.errors import UsageError, VtzooError
    from vtzoo.pipelines.engine import RunAborted
    from vtzoo.video.discovery import discover_videos

    try:  # everything that can be checked before decoding a single video
        discovery = discover_videos(args.directory)
        report_not_videos(discovery.skipped, "indexed")
        if not discovery.videos:
            raise UsageError(f"no video in {args.directory} ({len(discovery.skipped)} file(s) looked at, "
                             "none holds a video stream)")
        videos = [str(p) for p in discovery.videos]
        pipe = load_pipeline(args.pipeline, args.set, db=args.db)
        pipe._ready_engine().prepare()  # models built, database reached, folder writable
    except (VtzooError, FileNotFoundError) as exc:
        print(f"vtzoo index: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    job_store = None if args.no_resume else (args.job_store or "auto")
    try:
        result = pipe.run(videos, job_store=job_store, progress=not args.quiet, runner=args.runner,
                          ray_address=args.ray_address)
    except RunAborted as exc:
        print(f"vtzoo index: error: {exc}", file=sys.stderr)
        return EXIT_PARTIAL
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
    p.add_argument("--db", default=None,
                   help="an index folder (embedded store), a Milvus Lite file (*.db) or a Milvus URI "
                        "(http://host:19530); default: the spec's, ./vtzoo-index")
    p.add_argument("--job-store", default=None,
                   help="SQLite file recording finished videos (default: beside the index)")
    p.add_argument("--no-resume", action="store_true", help="recompute everything, record nothing")
    p.add_argument("--runner", choices=("local", "ray"), default="local",
                   help="run in this process (default) or on a Ray cluster (pip install 'vtzoo[ray]')")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE", help="override a step parameter")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_index)
