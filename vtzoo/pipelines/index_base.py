"""Vector indexes: one interface, an embedded store by default, Milvus (Lite file or server) by URI.

``VectorIndex(uri)`` opens the backend the URI names:

* ``http(s)://host:port`` (or ``tcp://``, ``grpc://``): a Milvus server or cluster;
* a path ending in ``.db``: a Milvus Lite database;
* any other path: vtzoo's embedded store, a folder (FAISS HNSW search over an SQLite table;
  chosen by measurement, see docs/pipelines.md).

A collection holds the embeddings of one operator: its dimension and the operator's fingerprint
are recorded when it is created, and a writer whose embeddings differ in either is refused. A row
is one video (or one window of it): its pooled vector, absolute path, content hash, duration and
clip start/end. The row id derives from the file's content hash (and the window), so indexing
the same video twice, under any name, writes one row: upserts are idempotent.

Models that score with more than one vector (DRL, COOT, ...) re-rank: the ANN search on pooled
vectors proposes the top N, then the operator's own ``similarity`` over the stored token
embeddings orders them. Token embeddings live beside the database (one safetensors file per row).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch

from vtzoo.errors import VtzooError
from vtzoo.operators.base import Embeddings, Operator

DEFAULT_DB = "./vtzoo-index"
MAX_PATH = 4096
ROW_FIELDS = ("id", "path", "content_hash", "duration", "start", "end")
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")


class VectorIndexError(VtzooError, RuntimeError):
    """A vector index problem: unreachable database, dimension clash, missing collection."""


class IndexUnavailable(VectorIndexError):
    """The database stopped answering mid-job: nothing more can be stored, whatever the item.

    ``fatal`` tells the engine to stop the run (after recording what was stored) instead of
    failing every remaining item one by one."""

    fatal = True


def is_server_uri(uri: str) -> bool:
    return uri.startswith(_SERVER_SCHEMES)


def is_local_uri(uri: str) -> bool:
    return not is_server_uri(uri)


def is_milvus_lite(uri: str) -> bool:
    return is_local_uri(uri) and uri.endswith(".db")


def collection_name(operator: str, variant: str) -> str:
    """Milvus names allow letters, digits and underscores: ``clip4clip/vit-b32`` -> ``clip4clip__vit_b32``."""
    if not operator:
        raise VectorIndexError("an index collection needs the operator name (or an explicit collection)")
    raw = f"{operator}__{variant}" if variant else operator
    name = re.sub(r"[^0-9A-Za-z_]", "_", raw)
    return name if re.match(r"[A-Za-z_]", name) else f"c_{name}"


# backends register themselves (``VectorIndex.__init_subclass__``): this module imports none of them
_BACKENDS: list[type["VectorIndex"]] = []


def backend_class(uri: str) -> type["VectorIndex"]:
    """The backend a URI names (without opening it)."""
    for backend in _BACKENDS:
        if backend.handles(uri):
            return backend
    raise VectorIndexError(f"no index backend opens {uri!r} (import vtzoo.pipelines.index for the built-in ones)")


def check_local_target(uri: str) -> None:
    """A local database's folder must exist and be writable (checked before any work starts)."""
    path = Path(uri).resolve()
    parent = path.parent
    if not parent.is_dir():
        raise VectorIndexError(f"index database {uri}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise VectorIndexError(f"index database {uri}: {path if path.exists() else parent} is not writable")


class VectorIndex:
    """The interface every backend implements; ``VectorIndex(uri)`` opens the one ``uri`` names."""

    backend: ClassVar[str] = ""
    supports_concurrent_writers: ClassVar[bool] = True  # several processes may write at once

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # the most specific first: a later backend may claim URIs an earlier one would also take
        _BACKENDS.insert(0, cls)

    @classmethod
    def handles(cls, uri: str) -> bool:
        """Whether this backend opens ``uri``."""
        return False

    def __new__(cls, uri: str = DEFAULT_DB, *args: Any, **kwargs: Any) -> "VectorIndex":
        if cls is VectorIndex:
            cls = backend_class(uri)
        return super().__new__(cls)

    def __init__(self, uri: str = DEFAULT_DB, token: str | None = None, create: bool = True):
        self.uri = uri
        self.token_root = self._token_root()

    def _token_root(self) -> Path:
        if is_local_uri(self.uri):
            return Path(self.uri + ".tokens")
        from vtzoo.folder_search import default_cache_dir

        return default_cache_dir() / "index-tokens" / re.sub(r"[^0-9A-Za-z]+", "_", self.uri)

    # -- collections (backend) -------------------------------------------------------------------
    collection_name = staticmethod(collection_name)

    def list_collections(self) -> list[str]:
        raise NotImplementedError

    def has_collection(self, name: str) -> bool:
        return name in self.list_collections()

    def _create_collection(self, name: str, dim: int, fingerprint: str | None) -> None:
        raise NotImplementedError

    def dimension(self, name: str) -> int:
        raise NotImplementedError

    def fingerprint(self, name: str) -> str | None:
        """The fingerprint of the operator whose embeddings the collection holds (None if unknown)."""
        raise NotImplementedError

    def count(self, name: str) -> int:
        raise NotImplementedError

    def drop(self, name: str) -> None:
        raise NotImplementedError

    def flush(self, name: str) -> None:
        """Seal what was written (a backend may then serve it from its ANN index)."""

    def close(self) -> None:
        pass

    # -- rows (backend) ----------------------------------------------------------------------------
    def _write(self, collection: str, rows: list[dict[str, Any]]) -> None:
        """Upsert rows (``ROW_FIELDS`` + ``vector`` as a list of floats + any metadata)."""
        raise NotImplementedError

    def _delete(self, collection: str, ids: list[str] | None, filter: str) -> int:
        raise NotImplementedError

    def _nearest(self, collection: str, vector: list[float], limit: int, filter: str) -> list[dict[str, Any]]:
        """``limit`` rows nearest to ``vector``: dicts with ``id``, ``score`` (cosine) and ROW_FIELDS."""
        raise NotImplementedError

    def iter_rows(self, collection: str, with_vectors: bool = True, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every row of a collection, in blocks (for export)."""
        raise NotImplementedError

    def vector(self, collection: str, row_id: str) -> list[float] | None:
        """The stored vector of one row ("more like this"), None if there is no such row."""
        raise NotImplementedError

    # -- collections (shared) ----------------------------------------------------------------------
    def ensure_collection(self, name: str, dim: int, fingerprint: str | None = None) -> None:
        """Create the collection, or check that it holds ``dim``-d embeddings of ``fingerprint``."""
        if not self.has_collection(name):
            self._create_collection(name, dim, fingerprint)
            return
        self.check_compatible(name, dim, fingerprint)

    def check_compatible(self, name: str, dim: int | None, fingerprint: str | None) -> None:
        existing = self.dimension(name)
        if dim is not None and existing != dim:
            raise VectorIndexError(f"collection '{name}' in {self.uri} holds {existing}-d vectors; "
                                   f"this embedding is {dim}-d (another operator or variant? use another collection)")
        stored = self.fingerprint(name)
        if fingerprint and stored and stored != fingerprint:
            raise VectorIndexError(f"collection '{name}' in {self.uri} holds embeddings of operator fingerprint "
                                   f"{stored}; this operator's fingerprint is {fingerprint} (other weights or "
                                   "precision: use another --db or collection, or delete this one)")

    def require(self, name: str) -> None:
        if not self.has_collection(name):
            raise VectorIndexError(f"collection '{name}' does not exist in {self.uri}: index some videos first "
                                   "(vtzoo index DIR)")

    def info(self) -> list[dict[str, Any]]:
        """One entry per collection: ``name``, ``rows``, ``fingerprint``, ``dim``."""
        return [{"name": name, "rows": self.count(name), "fingerprint": self.fingerprint(name), "dim": self.dimension(name)}
                for name in sorted(self.list_collections())]

    # -- writing (shared) --------------------------------------------------------------------------
    @staticmethod
    def content_hash(path: str | os.PathLike) -> str:
        from vtzoo.registry.weights import sha256_of

        return sha256_of(path)

    @staticmethod
    def row_id(content_hash: str, start: float | None, end: float | None) -> str:
        if start is None and end is None:
            return content_hash
        return f"{content_hash}@{start or 0.0:.3f}-{end if end is not None else -1:.3f}"

    def upsert(self, collection: str, embedding: Embeddings, path: str | os.PathLike, start: float | None = None,
               end: float | None = None, duration: float | None = None, fingerprint: str | None = None,
               **metadata: Any) -> str:
        """Store one video's (or window's) embedding; the same content and window keep one row."""
        return self.upsert_many(collection, [(embedding, path, start, end, duration, metadata)], fingerprint)[0]

    def upsert_many(self, collection: str, items: list[tuple], fingerprint: str | None = None) -> list[str]:
        """``items``: ``(embedding, path, start, end, duration, metadata)`` tuples, written in one call."""
        rows, token_rows = [], []
        for embedding, path, start, end, duration, metadata in items:
            if len(embedding) != 1:
                raise VectorIndexError(f"upsert takes one embedding per row, got {len(embedding)}")
            vector = torch.nn.functional.normalize(embedding.pooled[0].float(), dim=-1)
            content_hash = self.content_hash(path)
            row_id = self.row_id(content_hash, start, end)
            duration = _duration_of(path) if duration is None else duration
            rows.append({"id": row_id, "vector": vector.tolist(), "path": os.path.abspath(path)[:MAX_PATH],
                         "content_hash": content_hash, "duration": float(duration), "start": float(start or 0.0),
                         "end": float(end if end is not None else duration), **(metadata or {})})
            token_rows.append((row_id, embedding))
        self.ensure_collection(collection, len(rows[0]["vector"]), fingerprint)
        self._write(collection, rows)
        for row_id, embedding in token_rows:
            if embedding.tokens is not None:
                self._save_tokens(collection, row_id, embedding)
            else:  # an older row's tokens must not re-rank this one
                self._token_file(collection, row_id).unlink(missing_ok=True)
        return [row["id"] for row in rows]

    def insert_vectors(self, collection: str, vectors: torch.Tensor, rows: list[dict[str, Any]],
                       fingerprint: str | None = None) -> None:
        """Bulk write of precomputed rows (``id``, ``path``, ``content_hash``, ``duration``, ``start``,
        ``end``), one call for all: for migrations and benchmarks, where upsert's per-file hashing is
        not wanted."""
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
        self.ensure_collection(collection, int(vectors.shape[1]), fingerprint)
        self._write(collection, [{**row, "vector": vec} for row, vec in zip(rows, vectors.tolist())])

    def delete(self, collection: str, ids: list[str] | None = None, filter: str = "", path: str | None = None) -> int:
        """Delete rows by id, by file (``path``: every row of that file, by its absolute path), or every
        row matching a filter expression (e.g. ``path like "/videos/a/%"``). Returns the count."""
        self.require(collection)
        if path is not None:
            filter = f'path == "{_quote(os.path.abspath(path))}"' + (f" and ({filter})" if filter else "")
        if not ids and not filter:
            raise VectorIndexError("delete needs ids, a path or a filter (to empty a collection, drop it)")
        removed = self._delete(collection, ids, filter)
        if ids:
            for row_id in ids:
                self._token_file(collection, row_id).unlink(missing_ok=True)
        return removed

    def export_parquet(self, collection: str, target: str | os.PathLike, with_vectors: bool = True) -> int:
        """Write a collection to one Parquet file (vectors as fixed-size float lists); returns the rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.require(collection)
        dim = self.dimension(collection)
        fields = [pa.field("id", pa.string()), pa.field("path", pa.string()), pa.field("content_hash", pa.string()),
                  pa.field("duration", pa.float32()), pa.field("start", pa.float32()), pa.field("end", pa.float32())]
        if with_vectors:
            fields.append(pa.field("vector", pa.list_(pa.float32(), dim)))
        schema = pa.schema(fields, metadata={"vtzoo.fingerprint": self.fingerprint(collection) or "",
                                             "vtzoo.collection": collection})
        written = 0
        tmp = Path(str(target) + ".part")
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for block in self.iter_rows(collection, with_vectors=with_vectors):
                writer.write_table(pa.Table.from_pylist([{f.name: r[f.name] for f in fields} for r in block], schema=schema))
                written += len(block)
        expected = self.count(collection)
        if written != expected:
            tmp.unlink(missing_ok=True)
            raise VectorIndexError(f"export of '{collection}' from {self.uri} read {written} of {expected} rows; "
                                   "nothing was written (was the collection written to meanwhile?)")
        os.replace(tmp, target)
        return written

    # -- token embeddings for re-ranking ---------------------------------------------------------
    def _token_file(self, collection: str, row_id: str) -> Path:
        safe = hashlib.sha256(row_id.encode()).hexdigest()
        return self.token_root / collection / f"{safe}.safetensors"

    def _save_tokens(self, collection: str, row_id: str, embedding: Embeddings) -> None:
        file = self._token_file(collection, row_id)
        file.parent.mkdir(parents=True, exist_ok=True)
        embedding.save(file)

    def _load_tokens(self, collection: str, row_id: str) -> Embeddings | None:
        file = self._token_file(collection, row_id)
        return Embeddings.load(file) if file.is_file() else None

    # -- searching ---------------------------------------------------------------------------------
    def search(self, collection: str, query: Embeddings, top_k: int = 10, filter: str = "",
               rerank_with: Operator | None = None, rerank_top: int = 0) -> list[dict[str, Any]]:
        """Top-k rows for one query embedding; optionally re-ranked by the operator's similarity."""
        self.require(collection)
        if len(query) != 1:
            raise VectorIndexError(f"search takes one query embedding at a time, got {len(query)}")
        vector = torch.nn.functional.normalize(query.pooled[0].float(), dim=-1)
        dim = self.dimension(collection)
        if vector.numel() != dim:
            raise VectorIndexError(f"collection '{collection}' in {self.uri} holds {dim}-d vectors; "
                                   f"the query embedding is {vector.numel()}-d (another operator or variant?)")
        limit = max(top_k, rerank_top if rerank_with is not None else 0)
        hits = [{**h, "ann_score": h["score"]} for h in self._nearest(collection, vector.tolist(), limit, filter)]
        if rerank_with is not None and hits:
            hits = self._rerank(collection, query, hits, rerank_with)
        return hits[:top_k]

    def _rerank(self, collection: str, query: Embeddings, hits: list[dict[str, Any]], op: Operator) -> list[dict[str, Any]]:
        stored = [self._load_tokens(collection, h["id"]) for h in hits]
        usable = [(h, e) for h, e in zip(hits, stored) if e is not None]
        if not usable:
            return hits
        scores = op.similarity(query, Embeddings.concat([e for _, e in usable]))[0]
        for (hit, _), score in zip(usable, scores.tolist()):
            hit["score"] = float(score)
        reranked = sorted((h for h, _ in usable), key=lambda h: h["score"], reverse=True)
        return reranked + [h for h, e in zip(hits, stored) if e is None]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri}>"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _duration_of(path: str | os.PathLike) -> float:
    try:
        from vtzoo.video import probe_video

        return float(probe_video(path).duration)
    except Exception:
        return 0.0
