"""vtzoo's embedded vector store: rows in SQLite, search with FAISS. The default local backend.

Chosen by measurement (benchmarks/index_bench.py, docs/pipelines.md): at 100k 512-d vectors a
FAISS HNSW graph answers a top-10 query in well under a millisecond with recall@10 >= 0.95,
where Milvus Lite needs a slow index build and a numpy or FAISS flat scan takes 12-16 ms.

A store is a folder::

    index.sqlite        collections (name, dim, fingerprint, version) and rows (vector blob,
                        id, path, content hash, duration, start, end, extra metadata)
    ann/<collection>.*  the FAISS index saved at flush, with the row sequence numbers it covers
    tokens/             token embeddings for re-ranking (one safetensors file per row)

SQLite is the source of truth and does what a database must: durable commits (WAL), one writer at
a time across processes (others wait), readers beside it. Every write bumps the collection's
version; a search that sees a new version adds the rows written since (by any process) to its
FAISS index and masks rows that were replaced or deleted. Collections up to ``EXACT_LIMIT`` rows
are searched exactly; larger ones through HNSW (``HNSW_M``, ``HNSW_EF_*``). Filters use the
Milvus expression language (:mod:`vtzoo.pipelines.filters`); a filter that keeps few rows is
answered exactly over those rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vtzoo.pipelines.filters import to_sql
from vtzoo.pipelines.index_base import (
    ROW_FIELDS, VectorIndex, VectorIndexError, check_local_target, is_milvus_lite, is_server_uri,
)

EXACT_LIMIT = 10_000  # up to this many rows a flat scan is as fast as HNSW and exact
FILTERED_EXACT_LIMIT = 50_000  # a filter keeping at most this many rows is answered exactly
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 100, 96
REBUILD_DEAD_FRACTION = 0.3  # rebuild the ANN index once this share of its entries is replaced/deleted
_COLUMNS = {"id": "id", "path": "path", "content_hash": "content_hash", "duration": "duration",
            "start": "start", "end": '"end"'}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, dim INTEGER NOT NULL, fingerprint TEXT,
                                        version INTEGER NOT NULL DEFAULT 0, created REAL);
CREATE TABLE IF NOT EXISTS rows (seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL,
                                 path TEXT, content_hash TEXT, duration REAL, start REAL, "end" REAL, extra TEXT,
                                 vector BLOB NOT NULL, UNIQUE (collection, id));
"""


def _faiss():
    try:
        import faiss
    except ImportError:
        raise VectorIndexError("the embedded index needs faiss: pip install 'vtzoo[index]'") from None
    return faiss


@dataclass
class _Ann:
    """One collection's FAISS index and which rows its positions hold."""

    index: Any
    seqs: np.ndarray  # position -> row sequence number (ascending)
    alive: np.ndarray  # position -> the row still exists
    version: int = -1  # collection version this view reflects

    @property
    def max_seq(self) -> int:
        return int(self.seqs[-1]) if len(self.seqs) else 0


class EmbeddedIndex(VectorIndex):
    """``EmbeddedIndex("./vtzoo-index")``: a folder, created on first use."""

    @classmethod
    def handles(cls, uri: str) -> bool:
        return not (is_server_uri(uri) or is_milvus_lite(uri))

    backend = "embedded"

    def __init__(self, uri: str, token: str | None = None, create: bool = True):
        super().__init__(uri)
        self.folder = Path(uri)
        self._lock = threading.RLock()
        self._ann: dict[str, _Ann] = {}
        _faiss()  # a missing extra fails on opening, before any work
        self._open_folder(create)
        try:
            self.db = sqlite3.connect(str(self.folder / "index.sqlite"), check_same_thread=False,
                                      isolation_level=None, timeout=120)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA case_sensitive_like=ON")  # Milvus's like is case-sensitive
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise VectorIndexError(f"index database {uri} cannot be opened: {exc}") from None

    def _token_root(self) -> Path:
        return Path(self.uri) / "tokens"

    def _open_folder(self, create: bool) -> None:
        if self.folder.is_dir():
            if not os.access(self.folder, os.W_OK):
                raise VectorIndexError(f"index database {self.uri}: {self.folder} is not writable")
            return
        if self.folder.exists():
            raise VectorIndexError(f"index database {self.uri} is a file, not an index folder "
                                   "(a Milvus Lite database must end in .db)")
        if not create:
            raise VectorIndexError(f"index database {self.uri} does not exist (index some videos first: "
                                   f"vtzoo index DIR --db {self.uri})")
        check_local_target(self.uri)
        self.folder.mkdir()

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- collections --------------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM collections ORDER BY name")]

    def has_collection(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM collections WHERE name = ?", (name,)))

    def _create_collection(self, name: str, dim: int, fingerprint: str | None) -> None:
        self._query("INSERT OR IGNORE INTO collections (name, dim, fingerprint, created) VALUES (?, ?, ?, ?)",
                    (name, dim, fingerprint, time.time()))

    def _meta(self, name: str) -> tuple[int, str | None, int]:
        found = self._query("SELECT dim, fingerprint, version FROM collections WHERE name = ?", (name,))
        if not found:
            raise VectorIndexError(f"collection '{name}' does not exist in {self.uri}")
        return found[0]

    def dimension(self, name: str) -> int:
        return int(self._meta(name)[0])

    def fingerprint(self, name: str) -> str | None:
        return self._meta(name)[1]

    def count(self, name: str) -> int:
        return int(self._query("SELECT COUNT(*) FROM rows WHERE collection = ?", (name,))[0][0])

    def drop(self, name: str) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM rows WHERE collection = ?", (name,))
            self.db.execute("DELETE FROM collections WHERE name = ?", (name,))
            self.db.execute("COMMIT")
            self._ann.pop(name, None)
        for file in self._ann_files(name):
            file.unlink(missing_ok=True)

    def flush(self, name: str) -> None:
        """Save the collection's ANN index, so the next process loads it instead of rebuilding it."""
        if not self.has_collection(name):
            return
        with self._lock:
            ann = self._fresh_ann(name)
            index_file, seqs_file, alive_file = self._ann_files(name)
            index_file.parent.mkdir(exist_ok=True)
            tag = f".{os.getpid()}.tmp"
            _faiss().write_index(ann.index, str(index_file) + tag)
            np.save(str(seqs_file) + tag + ".npy", ann.seqs)
            np.save(str(alive_file) + tag + ".npy", ann.alive)
            os.replace(str(seqs_file) + tag + ".npy", seqs_file)
            os.replace(str(alive_file) + tag + ".npy", alive_file)
            os.replace(str(index_file) + tag, index_file)

    def _ann_files(self, name: str) -> tuple[Path, Path, Path]:
        base = self.folder / "ann" / name
        return Path(f"{base}.faiss"), Path(f"{base}.seqs.npy"), Path(f"{base}.alive.npy")

    # -- rows ---------------------------------------------------------------------------------
    def _write(self, collection: str, rows: list[dict[str, Any]]) -> None:
        records = []
        for row in rows:
            extra = {k: v for k, v in row.items() if k not in ROW_FIELDS and k != "vector"}
            vector = np.asarray(row["vector"], dtype=np.float32)
            records.append((collection, row["id"], row["path"], row["content_hash"], row["duration"], row["start"],
                            row["end"], json.dumps(extra) if extra else None, vector.tobytes()))
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany('INSERT OR REPLACE INTO rows (collection, id, path, content_hash, duration, start, '
                                    '"end", extra, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', records)
                self.db.execute("UPDATE collections SET version = version + 1 WHERE name = ?", (collection,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _delete(self, collection: str, ids: list[str] | None, filter: str) -> int:
        if ids:
            where, params = f"id IN ({', '.join('?' * len(ids))})", list(ids)
        else:
            where, params = to_sql(filter, _COLUMNS)
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            removed = self.db.execute(f"DELETE FROM rows WHERE collection = ? AND ({where})", [collection, *params]).rowcount
            self.db.execute("UPDATE collections SET version = version + 1 WHERE name = ?", (collection,))
            self.db.execute("COMMIT")
        return int(removed)

    def iter_rows(self, collection: str, with_vectors: bool = True, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        last = 0
        columns = 'seq, id, path, content_hash, duration, start, "end"' + (", vector" if with_vectors else "")
        while True:
            found = self._query(f"SELECT {columns} FROM rows WHERE collection = ? AND seq > ? ORDER BY seq LIMIT ?",
                                (collection, last, batch))
            if not found:
                return
            last = found[-1][0]
            yield [self._row(r[1:7], np.frombuffer(r[7], dtype=np.float32).tolist() if with_vectors else None)
                   for r in found]

    def vector(self, collection: str, row_id: str) -> list[float] | None:
        found = self._query("SELECT vector FROM rows WHERE collection = ? AND id = ?", (collection, row_id))
        return np.frombuffer(found[0][0], dtype=np.float32).tolist() if found else None

    @staticmethod
    def _row(values: tuple, vector: list[float] | None = None) -> dict[str, Any]:
        row = dict(zip(ROW_FIELDS, values))
        if vector is not None:
            row["vector"] = vector
        return row

    # -- the ANN view ---------------------------------------------------------------------------
    def _fresh_ann(self, name: str) -> _Ann:
        """The collection's FAISS index, caught up with every committed write."""
        dim, _, version = self._meta(name)
        ann = self._ann.get(name) or self._load_ann(name, dim)
        if ann.version != version:
            ann = self._catch_up(name, ann, dim, version)
            self._ann[name] = ann
        return ann

    def _load_ann(self, name: str, dim: int) -> _Ann:
        index_file, seqs_file, alive_file = self._ann_files(name)
        if index_file.is_file() and seqs_file.is_file() and alive_file.is_file():
            try:
                return _Ann(_faiss().read_index(str(index_file)), np.load(seqs_file), np.load(alive_file))
            except (RuntimeError, ValueError, OSError):
                pass  # a damaged cache: rebuilt from the rows
        return _Ann(_new_index(dim, 0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))

    def _catch_up(self, name: str, ann: _Ann, dim: int, version: int) -> _Ann:
        with self._lock:
            self.db.execute("BEGIN")  # one snapshot: new rows and live rows agree
            try:
                new = self.db.execute("SELECT seq, vector FROM rows WHERE collection = ? AND seq > ? ORDER BY seq",
                                      (name, ann.max_seq)).fetchall()
                live = np.array([r[0] for r in self.db.execute(
                    "SELECT seq FROM rows WHERE collection = ? ORDER BY seq", (name,))], dtype=np.int64)
            finally:
                self.db.execute("COMMIT")
        if new:
            vectors = np.frombuffer(b"".join(r[1] for r in new), dtype=np.float32).reshape(len(new), dim)
            ann = self._grown(ann, dim, vectors, np.array([r[0] for r in new], dtype=np.int64))
        ann.alive = np.isin(ann.seqs, live, assume_unique=True)
        if len(ann.seqs) and (~ann.alive).mean() > REBUILD_DEAD_FRACTION:
            keep = np.flatnonzero(ann.alive)
            ann = self._grown(_Ann(_new_index(dim, len(keep)), ann.seqs[:0], ann.alive[:0]), dim,
                              ann.index.reconstruct_batch(keep), ann.seqs[keep])
        ann.version = version
        return ann

    @staticmethod
    def _grown(ann: _Ann, dim: int, vectors: np.ndarray, seqs: np.ndarray) -> _Ann:
        total = len(ann.seqs) + len(seqs)
        index = ann.index
        if total > EXACT_LIMIT and not hasattr(index, "hnsw"):  # outgrew exact search: move to HNSW
            old = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, dim), np.float32)
            index = _new_index(dim, total)
            index.add(old)
        index.add(np.ascontiguousarray(vectors))
        return _Ann(index, np.concatenate([ann.seqs, seqs]), np.concatenate([ann.alive, np.ones(len(seqs), bool)]))

    # -- searching ------------------------------------------------------------------------------
    def _nearest(self, collection: str, vector: list[float], limit: int, filter: str) -> list[dict[str, Any]]:
        with self._lock:
            ann = self._fresh_ann(collection)
            query = np.asarray(vector, dtype=np.float32)[None]
            allowed = ann.alive
            if filter.strip():
                where, params = to_sql(filter, _COLUMNS)
                matched = np.array([r[0] for r in self._query(
                    f"SELECT seq FROM rows WHERE collection = ? AND ({where})", [collection, *params])], dtype=np.int64)
                allowed = np.zeros(len(ann.seqs), dtype=bool)
                allowed[np.searchsorted(ann.seqs, matched)] = True
                allowed &= ann.alive
            scores, positions = self._scan(ann, query, limit, allowed)
        seqs = [int(ann.seqs[p]) for p in positions]
        return self._hits(seqs, scores)

    @staticmethod
    def _scan(ann: _Ann, query: np.ndarray, limit: int, allowed: np.ndarray) -> tuple[list[float], list[int]]:
        faiss = _faiss()
        kept = int(allowed.sum())
        if kept == 0:
            return [], []
        limit = min(limit, kept)
        if kept < len(allowed) and (kept <= FILTERED_EXACT_LIMIT or not hasattr(ann.index, "hnsw")):
            positions = np.flatnonzero(allowed)  # few rows left: exact over them
            scores = ann.index.reconstruct_batch(positions) @ query[0]
            top = np.argsort(-scores)[:limit]
            return scores[top].tolist(), positions[top].tolist()
        params = None
        if hasattr(ann.index, "hnsw"):
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, 2 * limit))
        if kept < len(allowed):
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
            params = params or faiss.SearchParameters()
            params.sel = selector
        with _single_thread(faiss):
            scores, positions = ann.index.search(query, limit, params=params)
        pairs = [(float(s), int(p)) for s, p in zip(scores[0], positions[0]) if p >= 0]
        return [s for s, _ in pairs], [p for _, p in pairs]

    def _hits(self, seqs: list[int], scores: list[float]) -> list[dict[str, Any]]:
        if not seqs:
            return []
        found = self._query(f'SELECT seq, id, path, content_hash, duration, start, "end" FROM rows '
                            f"WHERE seq IN ({', '.join('?' * len(seqs))})", seqs)
        by_seq = {r[0]: self._row(r[1:]) for r in found}
        return [{**by_seq[s], "score": score} for s, score in zip(seqs, scores) if s in by_seq]


class _single_thread:
    """One query is too small to split: FAISS's OpenMP threads would only wait on each other (on a
    busy 2-core machine a flat 10k scan went from 0.4 ms single-threaded to 45 ms with them)."""

    def __init__(self, faiss: Any):
        self.faiss = faiss

    def __enter__(self) -> None:
        self.threads = self.faiss.omp_get_max_threads()
        self.faiss.omp_set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        self.faiss.omp_set_num_threads(self.threads)


def _new_index(dim: int, size: int) -> Any:
    faiss = _faiss()
    if size <= EXACT_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index
