"""Self-contained HTML reports: the hits of a search, and the ranks of an evaluation.

A report is one file: the page's stylesheet and scripts are inlined, thumbnails are ``data:``
URIs, and a hit plays from its local video file; it loads nothing from a network, and its
Content-Security-Policy forbids it to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from vtzoo.errors import VtzooError
from vtzoo.registry.weights import sha256_of
from vtzoo.serve.library import FileHashes, hit_record, missing_reason
from vtzoo.serve.page import report_page
from vtzoo.serve.thumbnails import ThumbnailCache, data_uri

WORST_QUERIES = 5
TOP_HITS = 5


def inline_hit(hit: dict[str, Any], thumbnails: ThumbnailCache, hash_of=sha256_of) -> dict[str, Any]:
    """A hit with its thumbnails inlined and its video as a local file address; a file that is
    gone or cannot be decoded is marked missing, and the others are unaffected."""
    hit = {**hit, "content_hash": hit.get("content_hash") or _hash_or_none(hit["path"], hash_of)}
    reason = hit.get("missing") or (missing_reason(hit, hash_of) if hit["content_hash"] else "the file is gone")
    if reason is None:
        try:
            files = thumbnails.strip(hit["path"], hit["content_hash"], hit.get("start") or 0.0, hit.get("end") or 0.0)
        except VtzooError as exc:
            reason = f"no frame could be read: {exc}"
    if reason is not None:
        return hit_record({**hit, "missing": reason}, [], None)
    return hit_record(hit, [data_uri(f) for f in files], Path(hit["path"]).resolve().as_uri())


def _hash_or_none(path: str, hash_of) -> str | None:
    try:
        return hash_of(path)
    except OSError:
        return None


def search_report(query: str, hits: Sequence[dict[str, Any]], thumbnails: ThumbnailCache, operator: str = "",
                  k: int | None = None, capped: bool = False) -> str:
    """The HTML of a search's hits (rows of an index, or ``{"path", "score"}`` of a folder search)."""
    hash_of = FileHashes()
    data = {"kind": "search", "query": query, "operator": operator, "k": k if k is not None else len(hits),
            "capped": capped, "hits": [inline_hit(h, thumbnails, hash_of) for h in hits]}
    about = f"{operator} · {len(hits)} results" if operator else f"{len(hits)} results"
    return report_page(f"vtzoo search: {query}", about, data)


def eval_report(report, thumbnails: ThumbnailCache, name: str = "", worst: int = WORST_QUERIES,
                top: int = TOP_HITS) -> str:
    """The HTML of an evaluation (an ``EvalReport`` with its scores): R@K bars, the ``worst``
    queries whose video was not ranked first, with their ``top`` hits, and every query's
    text-to-video rank."""
    from vtzoo.pipelines.evaluation import text_to_video_ranks

    if report.scores is None:
        raise VtzooError("this evaluation kept no scores to report on")
    ranks = text_to_video_ranks(report.scores, report.caption_video).long().tolist()
    queries = sorted(({"row": row, "text": text, "rank": rank, "video": report.videos[video]}
                      for row, (text, rank, video) in enumerate(zip(report.captions, ranks, report.caption_video))),
                     key=lambda q: -q["rank"])
    hash_of = FileHashes()
    missed = [q for q in queries if q["rank"] > 1][:worst]  # a query ranked first is not among the worst
    worst_queries = [{**q, "top": _top_hits(report, q["row"], top, thumbnails, hash_of)} for q in missed]
    data = {"kind": "eval", "metrics": report.metrics, "queries": queries, "worst": worst_queries}
    return report_page(f"vtzoo eval{': ' + name if name else ''}", f"{len(queries)} queries", data)


def _top_hits(report, caption: int, top: int, thumbnails: ThumbnailCache, hash_of) -> list[dict[str, Any]]:
    import torch

    scores = torch.as_tensor(report.scores[caption], dtype=torch.float64)
    best = torch.topk(scores, min(top, scores.numel())).indices.tolist()
    return [inline_hit({"path": report.videos[j], "score": float(scores[j])}, thumbnails, hash_of) for j in best]


def write_report(path: str | os.PathLike, html: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target
