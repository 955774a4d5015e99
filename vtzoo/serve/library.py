"""The query side of the search page and of the HTML reports: one index collection, searched by text
(through the query pipeline, the same one ``vtzoo search`` runs) or by a stored video vector
("more like this"), with metadata filters.

Hits are the index's rows (``id``, ``path``, ``content_hash``, ``duration``, ``start``, ``end``,
``score``) plus ``missing``: why the file cannot be shown any more (moved, deleted or changed since
it was indexed), or None. Only files that are rows of the collection are ever served.
"""

from __future__ import annotations

import copy
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vtzoo.errors import VtzooError
from vtzoo.operators.base import Embeddings
from vtzoo.registry.weights import sha256_of

MAX_HITS = 100  # a larger request is capped to this: the page shows a ranking, not the index
_ROW_ID = re.compile(r"^[0-9a-f]{64}(@\d+\.\d{3}-(-1|\d+\.\d{3}))?$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class IndexMismatch(VtzooError):
    """The index does not hold what the query operator searches (another operator, another size)."""

    def __init__(self, message: str, needs: list[str]):
        self.needs = needs
        super().__init__(message)


@dataclass
class Filters:
    """Metadata filters. ``path`` is a substring of the file path (``%`` and ``_`` match any text
    and any one character, as in SQL's LIKE); durations are in seconds."""

    path: str = ""
    min_duration: float | None = None
    max_duration: float | None = None

    def expression(self) -> str:
        """The Milvus filter expression; values are escaped, never pasted in raw."""
        terms = []
        if self.path:
            escaped = self.path.replace("\\", "\\\\").replace('"', '\\"')
            terms.append(f'path like "%{escaped}%"')
        if self.min_duration is not None:
            terms.append(f"duration >= {float(self.min_duration)!r}")
        if self.max_duration is not None:
            terms.append(f"duration <= {float(self.max_duration)!r}")
        return " and ".join(terms)


def combine(*expressions: str) -> str:
    return " and ".join(f"({e})" for e in expressions if e)


def clamp_hits(requested: int | None, default: int = 10, limit: int = MAX_HITS) -> tuple[int, bool]:
    """(k to use, whether the request was capped); k is at least 1."""
    k = default if requested is None else int(requested)
    return max(1, min(k, limit)), k > limit


@dataclass
class Ranking:
    hits: list[dict[str, Any]]
    k: int  # the number of hits asked of the index, after capping
    capped: bool  # the request asked for more than the cap


def operator_of(collection: str) -> list[str]:
    """The weight cards whose index collection is ``collection`` (or a named variant of it, like
    ``<operator>__<variant>__windows``)."""
    from vtzoo.pipelines.index import collection_name
    from vtzoo.registry.cards import list_cards

    names = []
    for card in list_cards():
        operator, _, variant = card.partition("/")
        base = collection_name(operator, variant)
        if collection == base or collection.startswith(base + "__"):
            names.append(card)
    return names


@dataclass
class QueryTarget:
    """Where a query spec's ``index.search`` step looks, read from its parameters."""

    db: str
    collection: str
    operator: str  # "name/variant" (or just the name), as the page shows it
    search_step: int

    @classmethod
    def of(cls, pipeline) -> "QueryTarget":
        """From a query Pipeline: its search step's parameters, with the operator, variant and
        collection the engine binds from the step that embeds the query."""
        from vtzoo.pipelines.index import DEFAULT_DB, collection_name

        spec, engine = pipeline.spec, pipeline._ready_engine()
        for position, step in enumerate(spec.steps):
            if step.op == "index.search":
                params = engine.params(step)
                operator, variant = params.get("operator", ""), params.get("variant") or ""
                collection = params.get("collection") or collection_name(operator, variant)
                if params.get("suffix") and not params.get("collection"):
                    collection = f"{collection}__{params['suffix']}"
                label = f"{operator}/{variant}" if variant else operator
                return cls(params.get("db", DEFAULT_DB), collection, label, position)
        raise VtzooError(f"query spec {spec.name or '(unnamed)'} has no index.search step to serve")


class FileHashes:
    """Content hashes of files, each hashed once per change (keyed by path, size and mtime)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: str | os.PathLike) -> str:
        stat = os.stat(path)
        key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._known:
            self._known[key] = sha256_of(path)
        return self._known[key]


class Library:
    """Searches one index collection with a query pipeline (text in, ``hits`` out)."""

    def __init__(self, query_pipeline, max_hits: int = MAX_HITS):
        from vtzoo.pipelines.index import VectorIndex

        self._base = query_pipeline
        self._spec_data = query_pipeline.spec.to_dict()
        self.target = QueryTarget.of(query_pipeline)
        self.max_hits = max_hits
        self.index = VectorIndex(self.target.db)
        self.hash_of = FileHashes()
        self._lock = threading.Lock()  # one model call at a time: the operator is not thread-safe
        self._fits = False

    # -- what the index holds ---------------------------------------------------------------
    @property
    def operator(self) -> str:
        return self.target.operator

    def check(self) -> None:
        """Raise IndexMismatch when the collection is absent or was made by another configuration.
        A fit is remembered; a misfit is looked at again next time (videos may be indexed meanwhile)."""
        if not self._fits:
            mismatch = self._find_mismatch()
            if mismatch is not None:
                raise mismatch
            self._fits = True

    def status(self) -> dict[str, Any]:
        try:
            self.check()
        except IndexMismatch as exc:
            return {"operator": self.operator, "collection": self.target.collection, "ok": False, "error": str(exc),
                    "needs": exc.needs}
        return {"operator": self.operator, "collection": self.target.collection, "ok": True,
                "rows": self.index.count(self.target.collection)}

    def _find_mismatch(self) -> IndexMismatch | None:
        name, db = self.target.collection, self.target.db
        if not self.index.has_collection(name):
            present = _collections(self.index)
            if not present:
                return IndexMismatch(f"the index {db} is empty: index videos first (vtzoo index DIR --db {db})", [])
            needs = sorted({card for collection in present for card in operator_of(collection)})
            made_by = f" (made by {', '.join(needs)})" if needs else ""
            return IndexMismatch(
                f"the index {db} holds {', '.join(present)}{made_by}, not '{name}' that {self.operator} searches: "
                f"serve it with the query settings of {' or '.join(needs) if needs else 'the operator that indexed it'}",
                needs)
        stored, query = self.index.dimension(name), self._query_dimension()
        if stored != query:
            return IndexMismatch(f"collection '{name}' in {db} holds {stored}-d vectors but {self.operator} as "
                                 f"configured here embeds text in {query}-d: it was indexed with another "
                                 "configuration of the operator; serve it with the settings it was indexed with",
                                 operator_of(name))
        return None

    def _query_dimension(self) -> int:
        from vtzoo.pipelines import Pipeline, PipelineSpec

        spec = self._base.spec
        search = spec.steps[self.target.search_step]
        embed_only = PipelineSpec(inputs=spec.inputs, steps=spec.steps[: self.target.search_step],
                                  outputs=[search.inputs[0]], name=f"{spec.name} (query embedding)")
        with self._lock:
            row = Pipeline.from_spec(embed_only, share_with=self._base)("a video")
        return int(row[search.inputs[0]].pooled.shape[-1])

    # -- searching ----------------------------------------------------------------------------
    def search_text(self, text: str, k: int | None = None, filters: Filters | None = None) -> Ranking:
        """The hits of a text query, ranked the way the query spec ranks (re-ranking included)."""
        from vtzoo.pipelines import Pipeline, PipelineSpec

        self.check()
        k, capped = clamp_hits(k, limit=self.max_hits)
        data = copy.deepcopy(self._spec_data)
        params = data["steps"][self.target.search_step].setdefault("params", {})
        params["top_k"] = k
        params["filter"] = combine(params.get("filter", ""), (filters or Filters()).expression())
        pipe = Pipeline.from_spec(PipelineSpec.from_dict(data), share_with=self._base)
        with self._lock:
            row = pipe(text)
        hits_column = self._base.spec.steps[self.target.search_step].outputs[0]
        return Ranking(self._annotate(row[hits_column]), k, capped)

    def more_like_this(self, row_id: str, k: int | None = None, filters: Filters | None = None) -> Ranking:
        """The rows nearest to a stored row's vector, the row itself left out."""
        import torch

        self.check()
        k, capped = clamp_hits(k, limit=self.max_hits)
        if not _ROW_ID.match(row_id):
            raise KeyError(row_id)
        vector = _stored_vector(self.index, self.target.collection, row_id)
        if vector is None:
            raise KeyError(row_id)
        not_itself = f'id != "{row_id}"'  # row_id matched _ROW_ID: no quote can be in it
        query = Embeddings(pooled=torch.as_tensor(vector, dtype=torch.float32).unsqueeze(0))
        with self._lock:
            hits = self.index.search(self.target.collection, query, top_k=k,
                                     filter=combine(not_itself, (filters or Filters()).expression()))
        return Ranking(self._annotate(hits), k, capped)

    # -- rows and files of the index -----------------------------------------------------------
    def _rows_where(self, expression: str, limit: int) -> list[dict[str, Any]]:
        """Rows matching a filter, through the index's search (a probe vector, any order): the one
        lookup every index backend offers."""
        import torch

        probe = Embeddings(pooled=torch.ones(1, self.index.dimension(self.target.collection)))
        with self._lock:
            return self.index.search(self.target.collection, probe, top_k=limit, filter=expression)

    def row(self, row_id: str) -> dict[str, Any] | None:
        """The index row ``row_id`` (None if there is none, or the id is malformed)."""
        if not _ROW_ID.match(row_id):
            return None
        self.check()
        rows = self._rows_where(f'id == "{row_id}"', 1)  # row_id matched _ROW_ID: no quote can be in it
        return rows[0] if rows else None

    def video_file(self, content_hash: str) -> Path | None:
        """An existing, unchanged file of the index with this content hash (None if there is none)."""
        if not _HASH.match(content_hash):
            return None
        self.check()
        for row in self._rows_where(f'content_hash == "{content_hash}"', 16):
            if missing_reason(row, self.hash_of) is None:
                return Path(row["path"])
        return None

    def _annotate(self, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for hit in hits:
            hit["missing"] = missing_reason(hit, self.hash_of)
            hit["score"] = float(hit["score"]) if math.isfinite(hit["score"]) else 0.0
        return hits


def _collections(index) -> list[str]:
    return sorted(index.list_collections())


def _stored_vector(index, collection: str, row_id: str) -> list[float] | None:
    return index.vector(collection, row_id)


def missing_reason(row: dict[str, Any], hash_of: Callable[[Path], str] = sha256_of) -> str | None:
    """Why ``row``'s file cannot be shown (moved/deleted, or its content changed), else None."""
    path = Path(row["path"])
    if not path.is_file():
        return "the file was moved or deleted since it was indexed"
    try:
        current = hash_of(path)
    except OSError as exc:
        return f"the file cannot be read: {exc.strerror or exc}"
    if current != row["content_hash"]:
        return "the file changed since it was indexed"
    return None


def hit_record(hit: dict[str, Any], thumbnails: list[str], video: str | None) -> dict[str, Any]:
    """A hit as the page and the reports show it (thumbnail and video addresses given by the caller)."""
    return {"id": hit.get("id"), "path": hit["path"], "score": hit["score"], "start": hit.get("start") or 0.0,
            "end": hit.get("end") or 0.0, "duration": hit.get("duration"), "missing": hit.get("missing"),
            "thumbnails": thumbnails, "video": video}
