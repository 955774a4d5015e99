"""The index ops of a pipeline: ``index.upsert`` and ``index.search``.

Both open their database when the op is built (the engine builds every op before reading any
input), so an unreachable server, a missing ``[index]`` extra or an unwritable folder fails at
the start. ``fingerprint`` is the operator's (the engine fills it in from the step that computes
the embeddings): a collection written by other weights or at another precision is refused.
"""

from __future__ import annotations

from typing import Any, Sequence

from vtzoo.operators.base import Embeddings
from vtzoo.pipelines.index import DEFAULT_DB
from vtzoo.pipelines.ops import CallableOp, OpContext, PipelineOp, pipeline_op


class UpsertOp(PipelineOp):
    """(vec, path[, start, end]) -> id; a batch of rows is one write."""

    batched = True

    def __init__(self, index: Any, collection: str, fingerprint: str | None):
        self.index, self.collection, self.fingerprint = index, collection, fingerprint

    def call(self, vec: Embeddings, path: str, start: float | None = None, end: float | None = None) -> str:
        return self.call_batch([(vec, path, start, end)])[0]

    def call_batch(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        items = []
        for row in rows:
            vec, path, start, end = (tuple(row) + (None, None))[:4]
            items.append((vec, path, start, end, None, {}))
        return self.index.upsert_many(self.collection, items, self.fingerprint)

    def finish(self) -> None:
        self.index.flush(self.collection)


@pipeline_op("index.upsert")
def _index_upsert(context: OpContext, db: str = DEFAULT_DB, operator: str = "", variant: str = "",
                  collection: str | None = None, fingerprint: str | None = None) -> PipelineOp:
    """Store a video (or window) embedding; idempotent by content."""
    index = context.index(db)
    name = collection or index.collection_name(operator, variant)
    if index.has_collection(name) and fingerprint:
        index.check_compatible(name, None, fingerprint)  # before any work, not at the first write
    return UpsertOp(index, name, fingerprint)


@pipeline_op("index.search")
def _index_search(context: OpContext, db: str = DEFAULT_DB, operator: str = "", variant: str | None = None,
                  collection: str | None = None, top_k: int = 10, rerank: int = 0, filter: str = "",
                  weights: Any = None, fingerprint: str | None = None) -> PipelineOp:
    """text embedding -> ranked hits; with ``rerank: N`` the top N are re-scored by the operator."""
    index = context.index(db, create=False)  # a search never creates an empty database
    name = collection or index.collection_name(operator, variant or "")
    index.require(name)
    if fingerprint:
        index.check_compatible(name, None, fingerprint)

    def search(query: Embeddings) -> list[dict[str, Any]]:
        # resolved per call, after the step that embedded the query has built its operator
        op = context.find_operator(operator, variant, weights) if rerank else None
        return index.search(name, query, top_k=top_k, rerank_with=op, rerank_top=rerank, filter=filter)

    return CallableOp(search, {})
