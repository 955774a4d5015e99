"""Run an operator over many inputs so that one bad input never loses the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from tqdm.auto import tqdm

from vtzoo.operators.base import Embeddings, Operator


@dataclass
class BatchResult:
    """Per-input outcome of :func:`embed_videos`: embeddings for the good, reasons for the bad."""

    embeddings: dict[str, Embeddings] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_videos(
    op: Operator,
    sources: Sequence[str],
    batch_size: int = 4,
    progress: bool = True,
    on_done: Callable[[str, Embeddings], None] | None = None,
) -> BatchResult:
    """Embed ``sources`` in batches; a batch that fails is retried item by item.

    The retry isolates the broken input (a corrupt file, a missing path) so the rest of its
    batch still finishes; its error message is kept in ``failures``.
    """
    result = BatchResult()
    bar = tqdm(total=len(sources), desc=f"embedding with {op.name}", unit="video", disable=not progress)
    for batch in chunks(list(sources), max(1, batch_size)):
        try:
            embedded = op.embed_video(list(batch))
            outcomes = [(src, embedded[i], None) for i, src in enumerate(batch)]
        except Exception:  # isolate the failing item(s)
            outcomes = [_embed_one(op, src) for src in batch]
        for src, emb, error in outcomes:
            if error is None:
                result.embeddings[src] = emb
                if on_done is not None:
                    on_done(src, emb)
            else:
                result.failures[src] = error
        bar.update(len(batch))
    bar.close()
    return result


def _embed_one(op: Operator, source: str) -> tuple[str, Embeddings | None, str | None]:
    try:
        return source, op.embed_video([source])[0], None
    except Exception as exc:
        return source, None, f"{type(exc).__name__}: {exc}"
