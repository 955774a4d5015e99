"""The index ops of a pipeline: ``index.upsert`` and ``index.search``.

Both open their database when the op is built (the engine builds every op before reading any
input), so an unreachable server, a missing ``[index]`` extra or an unwritable folder fails at
the start. ``fingerprint`` is the operator's (the engine fills it in from the step that computes
the embeddings): a collection written by other weights or at another precision is refused.
"""

from __future__ import annotations

from typing import Any, Sequence

from vtzoo.embeddings import Embeddings
from vtzoo.pipelines.index import DEFAULT_DB
from vtzoo.pipelines.ops import CallableOp, OpContext, PipelineOp, pipeline_op
from vtzoo.pipelines.spec import SpecError, Step


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


def collection_of(index: Any, operator: str, variant: str, collection: str | None, suffix: str) -> str:
    """The collection a step writes or reads: ``collection``, else the operator's and variant's
    (plus ``__<suffix>``, e.g. ``windows`` for clip-level rows)."""
    if collection:
        return collection
    if not operator:
        raise SpecError("index step", "params.collection", "no operator step feeds this index step: name a collection")
    name = index.collection_name(operator, variant)
    return f"{name}__{suffix}" if suffix else name


@pipeline_op("index.upsert")
def _index_upsert(context: OpContext, step: Step, db: str = DEFAULT_DB, collection: str | None = None,
                  suffix: str = "", operator: str = "", variant: str = "", fingerprint: str | None = None) -> PipelineOp:
    """Store a video (or window) embedding; idempotent by content. ``operator``, ``variant`` and
    ``fingerprint`` come from the step that computes the embeddings (the engine binds them)."""
    index = context.index(db)
    name = collection_of(index, operator, variant, collection, suffix)
    if index.has_collection(name) and fingerprint:
        index.check_compatible(name, None, fingerprint)  # before any work, not at the first write
    return UpsertOp(index, name, fingerprint)


@pipeline_op("index.search")
def _index_search(context: OpContext, step: Step, db: str = DEFAULT_DB, collection: str | None = None,
                  suffix: str = "", top_k: int = 10, rerank: int = 0, filter: str = "", operator: str = "",
                  variant: str = "", fingerprint: str | None = None) -> PipelineOp:
    """text embedding -> ranked hits from the collection of the operator that embedded the query;
    with ``rerank: N`` the top N are re-scored by that operator's own similarity."""
    index = context.index(db, create=False)  # a search never creates an empty database
    name = collection_of(index, operator, variant, collection, suffix)
    index.require(name)
    if fingerprint:
        index.check_compatible(name, None, fingerprint)

    def search(query: Embeddings) -> list[dict[str, Any]]:
        op = context.built_operator(fingerprint) if rerank and fingerprint else None
        return index.search(name, query, top_k=top_k, rerank_with=op, rerank_top=rerank, filter=filter)

    return CallableOp(search, {})
