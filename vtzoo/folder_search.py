"""Text search over a folder of videos, with embeddings cached by file content.

The cache key of a video is the sha256 of its bytes, under a folder named after the operator,
its variant and a fingerprint of its weights: renaming or moving a video costs nothing, a second
search embeds nothing, and other weights never read stale vectors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vtzoo.batching import embed_videos
from vtzoo.cache import default_cache_dir
from vtzoo.operators.base import Embeddings, Operator
from vtzoo.registry.weights import sha256_of
from vtzoo.video.discovery import discover_videos


class EmbeddingCache:
    """Embeddings of one operator, one file per video content hash, under the operator's
    fingerprint (weights, config, precision): other weights never read stale vectors."""

    def __init__(self, root: str | Path, op: Operator):
        key = hashlib.sha256(op.fingerprint.encode()).hexdigest()[:16]
        self.folder = Path(root) / "embeddings" / op.name / (op.variant or "custom") / key

    def _file(self, content_hash: str) -> Path:
        return self.folder / f"{content_hash}.safetensors"

    def get(self, content_hash: str) -> Embeddings | None:
        file = self._file(content_hash)
        if not file.is_file():
            return None
        try:
            return Embeddings.load(file)
        except Exception:  # a torn write from an interrupted run: embed again
            return None

    def put(self, content_hash: str, emb: Embeddings) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        emb.save(self._file(content_hash))  # atomic: readers never see half a file


@dataclass
class FolderSearchResult:
    ranking: list[tuple[Path, float]]
    failures: dict[str, str] = field(default_factory=dict)
    embedded: int = 0
    from_cache: int = 0
    skipped: dict[Path, str] = field(default_factory=dict)  # files that are not videos, and why


def embed_folder(
    op: Operator,
    directory: str | Path,
    cache_dir: str | Path | None = None,
    batch_size: int = 4,
    progress: bool = True,
) -> tuple[dict[Path, Embeddings], dict[str, str], int, dict[Path, str]]:
    """Embeddings of every video in ``directory`` (cached), failures, how many were computed, and
    the files that are not videos (with the reason)."""
    cache = EmbeddingCache(cache_dir or default_cache_dir(), op)
    discovery = discover_videos(directory)
    videos = discovery.videos
    found: dict[Path, Embeddings] = {}
    failures: dict[str, str] = {}
    hashes: dict[str, str] = {}
    missing: list[str] = []
    for video in videos:
        try:
            content_hash = sha256_of(video)
        except OSError as exc:
            failures[str(video)] = f"{type(exc).__name__}: {exc}"
            continue
        cached = cache.get(content_hash)
        if cached is not None:
            found[video] = cached
        else:
            hashes[str(video)] = content_hash
            missing.append(str(video))
    fresh = embed_videos(
        op,
        missing,
        batch_size=batch_size,
        progress=progress,
        on_done=lambda src, emb: cache.put(hashes[src], emb),
    )
    for src, emb in fresh.embeddings.items():
        found[Path(src)] = emb
    failures.update(fresh.failures)
    return found, failures, len(fresh.embeddings), discovery.skipped


def search_folder(
    op: Operator,
    directory: str | Path,
    query: str,
    top_k: int = 5,
    cache_dir: str | Path | None = None,
    batch_size: int = 4,
    progress: bool = True,
) -> FolderSearchResult:
    """Rank the videos of ``directory`` for ``query`` with the operator's own similarity."""
    found, failures, computed, skipped = embed_folder(op, directory, cache_dir, batch_size, progress)
    if not found:
        return FolderSearchResult(ranking=[], failures=failures, embedded=computed, from_cache=0, skipped=skipped)
    paths = sorted(found)
    videos = Embeddings.concat([found[p] for p in paths])
    scores = op.similarity(op.embed_text([query]), videos)[0]
    order = torch.argsort(scores, descending=True)[: max(1, top_k)]
    ranking = [(paths[int(i)], float(scores[int(i)])) for i in order]
    return FolderSearchResult(ranking=ranking, failures=failures, embedded=computed, from_cache=len(found) - computed,
                              skipped=skipped)
