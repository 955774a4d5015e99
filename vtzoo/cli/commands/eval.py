"""``vtzoo eval``: retrieval metrics of a pipeline on a captioned dataset."""

from __future__ import annotations

import argparse
import json
import sys

from vtzoo.cli.common import EXIT_OK, EXIT_PARTIAL, load_pipeline


def cmd_eval(args: argparse.Namespace) -> int:
    from vtzoo.pipelines.evaluation import evaluate_retrieval

    pipe = load_pipeline(args.pipeline, args.set)
    report = evaluate_retrieval(pipe, args.dataset, progress=not args.quiet)
    for failure in report.failures:
        print(f"vtzoo: failed: {failure}", file=sys.stderr)
    print(json.dumps(report.metrics, indent=2))
    if args.html:
        from vtzoo.serve.report import eval_report, write_report
        from vtzoo.serve.thumbnails import ThumbnailCache, default_root

        html = eval_report(report, ThumbnailCache(args.thumbs_dir or default_root(None)), name=args.pipeline)
        print(f"report: {write_report(args.html, html)}", file=sys.stderr)
    return EXIT_PARTIAL if report.failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="text-video retrieval metrics of a pipeline on a captioned dataset")
    p.add_argument("--pipeline", default="text_video_index", help="spec whose embed_video step embeds the videos")
    p.add_argument("--dataset", required=True, help="DIR with videos/ and captions.json or captions.csv")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    p.add_argument("--html", default=None, metavar="REPORT.html",
                   help="also write per-query ranks, the worst queries with their top hits and R@K bars as one HTML file")
    p.add_argument("--thumbs-dir", default=None, help="thumbnail cache (default: $VTZOO_CACHE/thumbs)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)
