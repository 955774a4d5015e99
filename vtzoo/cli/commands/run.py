"""``vtzoo run``: any pipeline spec over inputs, one JSON line per row."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vtzoo.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    check_output,
    jsonable,
    load_pipeline,
    report_run,
    why_no_rows,
)


def cmd_run(args: argparse.Namespace) -> int:
    check_output(args.output)
    pipe = load_pipeline(args.spec, args.set, db=args.db)
    items = list(args.input)
    if args.inputs_file:
        items += [line.strip() for line in Path(args.inputs_file).read_text().splitlines() if line.strip()]
    if not items:
        raise SystemExit("vtzoo run: give at least one --input (or --inputs-file)")
    result = pipe.run(items, job_store=args.job_store, progress=not args.quiet)
    report_run(result)
    if not result.rows:
        print(f"vtzoo run: no output rows: {why_no_rows(result, len(items))}", file=sys.stderr)
        return EXIT_FAILED
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        for row in result.rows:
            print(json.dumps(jsonable(row, full=args.full_embeddings)), file=out)
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_PARTIAL if result.failures else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline spec over inputs; prints one JSON line per output row")
    p.add_argument("spec", help="YAML file or catalog name")
    p.add_argument("--input", action="append", default=[], help="an input item (repeatable)")
    p.add_argument("--inputs-file", default=None, help="a file with one input per line")
    p.add_argument("--db", default=None)
    p.add_argument("--job-store", default=None)
    p.add_argument("-o", "--output", default=None, help="write the JSON lines here instead of stdout")
    p.add_argument("--full-embeddings", action="store_true",
                   help="write embeddings whole: tokens, mask and provenance besides pooled")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_run)
