"""A vector index over Milvus: Milvus Lite in a local file by default, any Milvus by URI.

One collection per (operator, variant). A row is one video (or one window of it): its pooled
vector, path, content hash, duration and clip start/end. The primary key is derived from the
file's content hash (and the window), so indexing the same video twice, under any name, writes
one row: upserts are idempotent.

Models that score with more than one vector (DRL, COOT, ...) re-rank: the ANN search on pooled
vectors proposes the top N, then the operator's own ``similarity`` over the stored token
embeddings orders them. Token embeddings live beside the database (one safetensors file per row).

Milvus Lite serves a local file to one process. While an index job holds it, vtzoo publishes the
job's local endpoint beside the file, so a search from another process goes through the same
server instead of failing on the lock.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import torch

from vtzoo.operators.base import Embeddings, Operator, VtzooError
from vtzoo.registry.weights import sha256_of

DEFAULT_DB = "./vtzoo.db"
_ENDPOINT_SUFFIX = ".endpoint.json"
_MAX_PATH = 4096


class VectorIndexError(VtzooError, RuntimeError):
    """A vector index problem: unreachable database, dimension clash, missing collection."""


def is_local_uri(uri: str) -> bool:
    return "://" not in uri


def collection_name(operator: str, variant: str) -> str:
    """Milvus names allow letters, digits and underscores: ``clip4clip/vit-b32`` -> ``clip4clip__vit_b32``."""
    if not operator:
        raise VectorIndexError("an index collection needs the operator name (or an explicit collection)")
    raw = f"{operator}__{variant}" if variant else operator
    name = re.sub(r"[^0-9A-Za-z_]", "_", raw)
    return name if re.match(r"[A-Za-z_]", name) else f"c_{name}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VectorIndex:
    """A Milvus database: ``VectorIndex("./vtzoo.db")`` (Milvus Lite) or ``VectorIndex("http://host:19530")``."""

    def __init__(self, uri: str = DEFAULT_DB, token: str | None = None):
        self.uri = uri
        self._lock = threading.RLock()
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._loaded: set[str] = set()
        self.client = self._connect(token)
        if is_local_uri(uri):
            self.token_root = Path(uri + ".tokens")
        else:
            from vtzoo.cache import default_cache_dir

            self.token_root = default_cache_dir() / "index-tokens" / re.sub(r"[^0-9A-Za-z]+", "_", uri)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, token: str | None):
        from pymilvus import MilvusClient

        if not is_local_uri(self.uri):
            try:
                return MilvusClient(uri=self.uri, token=token or "")
            except Exception as exc:
                raise VectorIndexError(f"cannot reach Milvus at {self.uri}: {exc}") from None
        return MilvusClient(uri=self._local_endpoint())

    def _local_endpoint(self) -> str:
        """Start (or join) the Milvus Lite server of the local file ``self.uri``."""
        path = Path(self.uri).resolve()
        parent = path.parent
        if not parent.is_dir():
            raise VectorIndexError(f"index database {self.uri}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise VectorIndexError(f"index database {self.uri}: {path if path.exists() else parent} is not writable")
        from milvus_lite.server_manager import server_manager_instance

        endpoint = server_manager_instance.start_and_get_uri(str(path))
        if endpoint is not None:
            self._publish_endpoint(path, endpoint)
            return endpoint
        shared = self._read_endpoint(path)
        if shared is None:
            raise VectorIndexError(f"index database {self.uri} is locked by another process that does not share it; "
                                   "wait for it to finish, or use a Milvus server URI for concurrent access")
        return shared

    @staticmethod
    def _publish_endpoint(path: Path, endpoint: str) -> None:
        file = Path(str(path) + _ENDPOINT_SUFFIX)
        file.write_text(json.dumps({"uri": endpoint, "pid": os.getpid()}))

        def remove() -> None:
            try:
                if json.loads(file.read_text()).get("pid") == os.getpid():
                    file.unlink()
            except (OSError, ValueError):
                pass

        atexit.register(remove)

    @staticmethod
    def _read_endpoint(path: Path) -> str | None:
        file = Path(str(path) + _ENDPOINT_SUFFIX)
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            return None
        return data["uri"] if _pid_alive(int(data.get("pid", -1))) else None

    # -- collections --------------------------------------------------------------------------
    collection_name = staticmethod(collection_name)

    def has_collection(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def ensure_collection(self, name: str, dim: int) -> None:
        from pymilvus import DataType

        with self._lock:
            if self.client.has_collection(name):
                existing = self.dimension(name)
                if existing != dim:
                    raise VectorIndexError(f"collection '{name}' in {self.uri} holds {existing}-d vectors; "
                                           f"this embedding is {dim}-d (another operator or variant? use another collection)")
                return
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=True)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=160)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("path", DataType.VARCHAR, max_length=_MAX_PATH)
            schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
            schema.add_field("duration", DataType.FLOAT)
            schema.add_field("start", DataType.FLOAT)
            schema.add_field("end", DataType.FLOAT)
            index_params = self.client.prepare_index_params()
            index_params.add_index(field_name="vector", metric_type="COSINE", index_type="AUTOINDEX")
            self.client.create_collection(name, schema=schema, index_params=index_params)

    def _ensure_loaded(self, name: str) -> None:
        """Milvus searches only loaded collections; a reopened database starts with none loaded."""
        if name in self._loaded:
            return
        with self._lock:
            state = str(self.client.get_load_state(name).get("state", ""))
            if "Loaded" not in state or "NotLoad" in state:
                self.client.load_collection(name)
            self._loaded.add(name)

    def flush(self, name: str) -> None:
        """Seal what was written: Milvus then serves it from indexed segments, not a scanned buffer."""
        if self.has_collection(name):
            with self._lock:
                self.client.flush(name)

    def dimension(self, name: str) -> int:
        info = self.client.describe_collection(name)
        for f in info["fields"]:
            if f["name"] == "vector":
                return int(f["params"]["dim"])
        raise VectorIndexError(f"collection '{name}' has no vector field")

    def count(self, name: str) -> int:
        if not self.has_collection(name):
            return 0
        self._ensure_loaded(name)
        rows = self.client.query(name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def drop(self, name: str) -> None:
        self.client.drop_collection(name)

    # -- writing ------------------------------------------------------------------------------
    def content_hash(self, path: str | os.PathLike) -> str:
        stat = os.stat(path)
        key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_of(path)
        return self._hashes[key]

    @staticmethod
    def row_id(content_hash: str, start: float | None, end: float | None) -> str:
        if start is None and end is None:
            return content_hash
        return f"{content_hash}@{start or 0.0:.3f}-{end if end is not None else -1:.3f}"

    def upsert(self, collection: str, embedding: Embeddings, path: str | os.PathLike, start: float | None = None,
               end: float | None = None, duration: float | None = None, **metadata: Any) -> str:
        """Store one video's (or window's) embedding; the same content and window keep one row."""
        if len(embedding) != 1:
            raise VectorIndexError(f"upsert takes one embedding at a time, got {len(embedding)}")
        vector = torch.nn.functional.normalize(embedding.pooled[0].float(), dim=-1)
        self.ensure_collection(collection, int(vector.numel()))
        content_hash = self.content_hash(path)
        row_id = self.row_id(content_hash, start, end)
        if duration is None:
            duration = _duration_of(path)
        row = {"id": row_id, "vector": vector.tolist(), "path": os.fspath(path)[:_MAX_PATH], "content_hash": content_hash,
               "duration": float(duration), "start": float(start or 0.0), "end": float(end if end is not None else duration),
               **metadata}
        with self._lock:
            self.client.upsert(collection, [row])
        if embedding.tokens is not None:
            self._save_tokens(collection, row_id, embedding)
        else:  # an older row's tokens must not re-rank this one
            self._token_file(collection, row_id).unlink(missing_ok=True)
        return row_id

    def insert_vectors(self, collection: str, vectors: torch.Tensor, rows: list[dict[str, Any]]) -> None:
        """Bulk write of precomputed rows (``id``, ``path``, ``content_hash``, ``duration``, ``start``,
        ``end``), one Milvus call for all: for migrations and benchmarks, where upsert's per-file
        hashing is not wanted."""
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
        self.ensure_collection(collection, int(vectors.shape[1]))
        payload = [{**row, "vector": vec} for row, vec in zip(rows, vectors.tolist())]
        with self._lock:
            self.client.upsert(collection, payload)

    def delete(self, collection: str, ids: list[str] | None = None, filter: str = "") -> int:
        """Delete rows by id, or every row matching a filter expression (e.g. ``path like "a/%"``)."""
        if not self.has_collection(collection):
            raise VectorIndexError(f"collection '{collection}' does not exist in {self.uri}")
        self._ensure_loaded(collection)
        with self._lock:
            result = self.client.delete(collection, ids=ids, filter=filter) if ids else self.client.delete(collection, filter=filter)
        count = result.get("delete_count", 0) if isinstance(result, dict) else len(result or [])
        return int(count)

    # -- token embeddings for re-ranking -------------------------------------------------------
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

    # -- searching ----------------------------------------------------------------------------
    def search(self, collection: str, query: Embeddings, top_k: int = 10, filter: str = "",
               rerank_with: Operator | None = None, rerank_top: int = 0) -> list[dict[str, Any]]:
        """Top-k rows for one query embedding; optionally re-ranked by the operator's similarity."""
        if not self.has_collection(collection):
            raise VectorIndexError(f"collection '{collection}' does not exist in {self.uri}: index some videos first "
                                   "(vtzoo index DIR)")
        if len(query) != 1:
            raise VectorIndexError(f"search takes one query embedding at a time, got {len(query)}")
        self._ensure_loaded(collection)
        vector = torch.nn.functional.normalize(query.pooled[0].float(), dim=-1).tolist()
        limit = max(top_k, rerank_top if rerank_with is not None else 0)
        fields = ["path", "content_hash", "duration", "start", "end"]
        with self._lock:
            raw = self.client.search(collection, data=[vector], limit=limit, filter=filter, output_fields=fields)
        hits = [{"id": h["id"], "score": float(h["distance"]), "ann_score": float(h["distance"]), **h["entity"]}
                for h in raw[0]]
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


def _duration_of(path: str | os.PathLike) -> float:
    try:
        from vtzoo.video import probe_video

        return float(probe_video(path).duration)
    except Exception:
        return 0.0
