"""``vtzoo search``: an index by text, or a folder of videos without a database."""

from __future__ import annotations

import argparse
from pathlib import Path

from vtzoo.cli.common import EXIT_OK, EXIT_PARTIAL, add_operator_args, create_operator, report_failures, report_not_videos
from vtzoo.errors import InputError

DEFAULT_FOLDER_OPERATOR = "clip4clip"  # a folder search has no index whose operator it follows


def cmd_search(args: argparse.Namespace) -> int:
    if args.html and Path(args.html).is_dir():
        raise InputError("--html names a folder; give the report's file name", args.html)
    if len(args.terms) == 1:
        return _search_index(args, args.terms[0])
    if len(args.terms) != 2:
        raise SystemExit("vtzoo search: give QUERY (search the index) or DIR QUERY (search a folder)")
    from vtzoo.folder_search import search_folder

    directory, query = args.terms
    args.op = args.op or DEFAULT_FOLDER_OPERATOR
    op = create_operator(args)
    result = search_folder(
        op, directory, query, top_k=args.top_k, cache_dir=args.cache_dir,
        batch_size=args.batch_size, progress=not args.quiet,
    )
    report_not_videos(result.skipped, "searched")
    report_failures(result.failures)
    print(f"# {query!r}: {len(result.ranking)} results ({result.embedded} embedded, {result.from_cache} from cache)")
    for rank, (path, score) in enumerate(result.ranking, 1):
        print(f"{rank:3d}. {score:9.4f}  {path}")
    if args.html:
        _write_html(args, query, [{"path": str(path), "score": float(score)} for path, score in result.ranking])
    return EXIT_PARTIAL if result.failures else EXIT_OK


def query_spec(args: argparse.Namespace):
    """The query pipeline's spec with ``--op/--variant/--weights/--precision/--seed/--set`` applied to
    its operator step (the search step follows that operator to its collection)."""
    from vtzoo.cli.common import load_spec, operator_arguments
    from vtzoo.registry.operators import split_name

    spec = load_spec(args.pipeline, args.set, db=args.db)
    name, variant = split_name(args.op, args.variant) if args.op else (None, args.variant)
    settings = {**({"variant": variant} if variant else {}), **operator_arguments(args)}
    for step in spec.steps:
        if isinstance(step.op, str) and not step.op.startswith(("index.", "video.", "value.")):
            if name:
                spec = spec.override(step.name, op=f"{name}.{step.op.split('.', 1)[1]}")
            spec = spec.override(step.name, **settings)
    return spec


def index_query_pipeline(args: argparse.Namespace, top_k: int | None = None):
    """The query pipeline of ``vtzoo search QUERY --db ...`` (and of ``vtzoo serve``)."""
    from vtzoo.pipelines import Pipeline

    spec = query_spec(args)
    if top_k is not None:
        for step in spec.steps:
            if step.op == "index.search":
                spec = spec.override(step.name, top_k=top_k)
    return Pipeline.from_spec(spec)


def _search_index(args: argparse.Namespace, query: str) -> int:
    pipe = index_query_pipeline(args, top_k=args.top_k)
    row = pipe(query)
    hits = row["hits"] if isinstance(row, dict) else []
    print(f"# {query!r}: {len(hits)} results")
    for rank, hit in enumerate(hits, 1):
        window = f" [{hit['start']:.1f}s-{hit['end']:.1f}s]" if hit.get("end") else ""
        print(f"{rank:3d}. {hit['score']:9.4f}  {hit['path']}{window}")
    if args.html:
        from vtzoo.serve.library import QueryTarget

        target = QueryTarget.of(pipe)
        _write_html(args, query, hits, db=target.db, operator=target.operator)
    return EXIT_OK


def _write_html(args: argparse.Namespace, query: str, hits: list[dict], db: str | None = None,
                operator: str | None = None) -> None:
    from vtzoo.serve.report import search_report, write_report
    from vtzoo.serve.thumbnails import ThumbnailCache, default_root

    root = args.thumbs_dir or default_root(db)
    html = search_report(query, hits, ThumbnailCache(root), operator=operator or args.op or "", k=args.top_k)
    print(f"report: {write_report(args.html, html)}")


def add_index_query_args(p: argparse.ArgumentParser, db_required: bool = False) -> None:
    """The flags that say which index to query and how: shared by ``search`` and ``serve``."""
    p.add_argument("--db", default=None, required=db_required,
                   help="index folder, Milvus Lite file (*.db) or Milvus URI (default: the spec's, ./vtzoo-index); "
                        "a missing database is an error, never created")
    p.add_argument("--pipeline", default="text_video_query", help="query spec (catalog name or file) for index search")
    add_operator_args(p, default_op=None)
    p.add_argument("--step-set", dest="set", action="append", default=[], metavar="STEP.KEY=VALUE",
                   help="override a step parameter of the query spec (repeatable)")
    p.add_argument("--thumbs-dir", default=None,
                   help="thumbnail cache (default: beside the index, DB.thumbs; $VTZOO_CACHE/thumbs for a folder or server)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search the index (QUERY) or rank the videos of a folder (DIR QUERY)")
    p.add_argument("terms", nargs="+", metavar="[DIR] QUERY")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--html", default=None, metavar="REPORT.html",
                   help="also write the hits as a self-contained HTML page (thumbnails inlined)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: $VTZOO_CACHE or ~/.cache/vtzoo)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_index_query_args(p)
    p.set_defaults(func=cmd_search)
