"""The web app of ``vtzoo serve`` (Starlette): the page, its JSON API, thumbnails and videos.

Routes:

* ``GET /``: the search page.
* ``GET /api/status``: the operator the page queries with and whether the index fits it.
* ``GET /api/search?q=TEXT&k=N[&path=..][&min_duration=..][&max_duration=..]``:
  ``{"operator", "query", "k", "capped", "hits": [{"id", "path", "score", "start", "end",
  "duration", "missing", "thumbnails": [URL, ...], "video": URL}, ...]}``.
* ``GET /api/similar?id=ROW_ID&k=N[&filters]``: the same, nearest to a stored row's vector.
* ``GET /thumbs/ROW_ID/I.jpg``, ``GET /video/CONTENT_HASH`` (HTTP range requests): only for rows
  of the index, looked up by id or content hash; a URL never carries a file path.
"""

from __future__ import annotations

import math
import mimetypes
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from vtzoo.errors import VtzooError
from vtzoo.pipelines.index import VectorIndexError
from vtzoo.serve.library import Filters, IndexMismatch, Library, Ranking, hit_record, missing_reason
from vtzoo.serve.page import PAGE_POLICY, search_page
from vtzoo.serve.thumbnails import ThumbnailCache


class BadRequest(VtzooError):
    pass


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _number(request: Request, name: str, kind: type) -> Any:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise BadRequest(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}")
    return value


def _filters(request: Request) -> Filters:
    return Filters(path=request.query_params.get("path", "").strip(),
                   min_duration=_number(request, "min_duration", float),
                   max_duration=_number(request, "max_duration", float))


def hit_urls(hit: dict[str, Any], count: int) -> dict[str, Any]:
    """A hit as the API returns it: thumbnails and video by URL (none for a missing file)."""
    if hit.get("missing"):
        return hit_record(hit, [], None)
    row = quote(hit["id"], safe="@")
    return hit_record(hit, [f"/thumbs/{row}/{i}.jpg" for i in range(count)], f"/video/{hit['content_hash']}")


def create_app(library: Library, thumbnails: ThumbnailCache) -> Starlette:
    def ranking(result: Ranking, **about: Any) -> JSONResponse:
        return JSONResponse({"operator": library.operator, **about, "k": result.k, "capped": result.capped,
                             "hits": [hit_urls(h, thumbnails.count) for h in result.hits]})

    async def page(request: Request) -> Response:
        return HTMLResponse(search_page(library.max_hits), headers={"Content-Security-Policy": PAGE_POLICY})

    async def status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(library.status))

    async def search(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            return _error(400, "the query (q) is empty")
        k, filters = _number(request, "k", int), _filters(request)
        return ranking(await run_in_threadpool(library.search_text, query, k, filters), query=query)

    async def similar(request: Request) -> Response:
        row_id = request.query_params.get("id", "")
        k, filters = _number(request, "k", int), _filters(request)
        if await run_in_threadpool(library.row, row_id) is None:
            return _error(404, f"no row {row_id!r} in the index")
        return ranking(await run_in_threadpool(library.more_like_this, row_id, k, filters), like=row_id)

    async def thumbnail(request: Request) -> Response:
        row = await run_in_threadpool(library.row, request.path_params["row_id"])
        number = request.path_params["number"]
        if row is None or number >= thumbnails.count:
            return _error(404, "no such thumbnail in the index")
        reason = await run_in_threadpool(missing_reason, row, library.hash_of)
        if reason:
            return _error(404, reason)
        files = await run_in_threadpool(thumbnails.strip, row["path"], row["content_hash"], row["start"], row["end"])
        return FileResponse(files[number], media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    async def video(request: Request) -> Response:
        path = await run_in_threadpool(library.video_file, request.path_params["content_hash"])
        if path is None:
            return _error(404, "no such video in the index (or its file was moved, deleted or changed)")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    async def mismatch(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IndexMismatch)
        return _error(409, str(exc), operator=library.operator, needs=exc.needs, hits=[])

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def index_failure(request: Request, exc: Exception) -> Response:  # e.g. the Milvus server went away
        return _error(502, str(exc))

    async def failure(request: Request, exc: Exception) -> Response:  # e.g. a video that cannot be decoded
        return _error(422, str(exc))

    routes = [
        Route("/", page),
        Route("/api/status", status),
        Route("/api/search", search),
        Route("/api/similar", similar),
        Route("/thumbs/{row_id}/{number:int}.jpg", thumbnail),
        Route("/video/{content_hash}", video),
    ]
    handlers = {IndexMismatch: mismatch, BadRequest: bad_request, VectorIndexError: index_failure, VtzooError: failure}
    return Starlette(routes=routes, exception_handlers=handlers)
