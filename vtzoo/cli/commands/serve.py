"""``vtzoo serve``: a search page over an index (needs ``pip install 'vtzoo[serve]'``)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from vtzoo.cli.common import EXIT_OK
from vtzoo.cli.commands.search import add_index_query_args, index_query_pipeline

EXIT_USAGE = 2


def _usage_error(message: str) -> int:
    print(f"vtzoo serve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads: a taken port fails at once, and port 0
    picks a free one (printed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from vtzoo.serve.app import create_app
    except ImportError as exc:
        return _usage_error(f"the search page needs its extra ({exc.name} is missing): pip install 'vtzoo[serve]'")
    from vtzoo.pipelines.index import is_local_uri
    from vtzoo.serve.library import Library
    from vtzoo.serve.thumbnails import ThumbnailCache, default_root

    if is_local_uri(args.db) and not Path(args.db).exists():
        return _usage_error(f"index database {args.db} does not exist: make it with vtzoo index DIR --db {args.db}")
    if not 1 <= args.max_hits <= 16384:
        return _usage_error(f"--max-hits must be between 1 and 16384, got {args.max_hits}")
    if not 1 <= args.thumbnails <= 32:
        return _usage_error(f"--thumbnails must be between 1 and 32, got {args.thumbnails}")
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        return _usage_error(str(exc))
    library = Library(index_query_pipeline(args), max_hits=args.max_hits)
    status = library.status()
    if not status["ok"]:
        print(f"vtzoo serve: warning: {status['error']}", file=sys.stderr)
    thumbnails = ThumbnailCache(args.thumbs_dir or default_root(args.db), count=args.thumbnails)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"vtzoo serve: {library.operator} over {args.db} on http://{shown}:{port}/", flush=True)
    config = uvicorn.Config(create_app(library, thumbnails), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a search page over an index: thumbnails, playback, filters, more like this")
    add_index_query_args(p, db_required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--thumbnails", type=int, default=4, metavar="N", help="frames per hit (default: %(default)s)")
    p.add_argument("--max-hits", type=int, default=100, help="cap on the results of one query (default: %(default)s)")
    p.set_defaults(func=cmd_serve)
