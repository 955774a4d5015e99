"""A job store makes long runs resumable: every finished input is written down with its outputs.

One SQLite file (stdlib, WAL journal): a row per input key with its status, its output rows
(JSON, with tensors in a safetensors blob) or its failures. An input's key is the pipeline's
fingerprint (steps, parameters, operator weights) and the input itself, a file by its path *and*
its content hash: another variant, another parameter or an edited file is a new key, so it is
computed again. An input is committed only once every row it produced has left the pipeline and
the index it was written to has acknowledged the write (an acknowledged write survives a crash in
every backend: the embedded store's SQLite commit, Milvus's write-ahead log), so after a crash (even
SIGKILL of the job or of a Milvus server) an input is either fully recorded or computed again,
never half of each.

Content hashes are remembered per (path, size, mtime) in the store, so a rerun over 100,000
unchanged files does not read them all again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

import torch

from vtzoo.embeddings import Embeddings
from vtzoo.errors import VtzooError


class JobStoreError(VtzooError, RuntimeError):
    pass


def default_job_store(db: str) -> Path:
    """Where a job writing into index ``db`` records its progress by default: beside the index."""
    from vtzoo.pipelines.index import is_local_uri, is_milvus_lite

    if is_milvus_lite(db):
        return Path(f"{db}.jobs.sqlite")
    if is_local_uri(db):
        return Path(db) / "jobs.sqlite"  # inside the embedded store's folder
    import re

    from vtzoo.folder_search import default_cache_dir

    return default_cache_dir() / "jobs" / (re.sub(r"[^0-9A-Za-z]+", "_", db).strip("_") + ".sqlite")


def item_key(values: list[Any], content_hash: Callable[[str], str] | None = None) -> str:
    """A stable key for a pipeline input: strings and numbers as written, bytes by their sha256,
    and a string naming an existing file also by the sha256 of its content (with ``content_hash``)."""
    parts = []
    for value in values:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(json.dumps(value))
            if content_hash is not None and isinstance(value, str) and os.path.isfile(value):
                parts.append("sha256:" + content_hash(value))
        elif isinstance(value, (bytes, bytearray)):
            parts.append("sha256:" + hashlib.sha256(value).hexdigest())
        else:
            raise JobStoreError(f"an input of type {type(value).__name__} cannot key a resumable job; "
                                "pass paths, strings, numbers or bytes")
    return "|".join(parts)


# -- values <-> (JSON, tensors) ---------------------------------------------------------------
def encode(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, Embeddings):
        parts = {"pooled": value.pooled, "tokens": value.tokens, "mask": value.mask}
        extras = {k: v for k, v in value.extras.items() if isinstance(v, (torch.Tensor, str, int, float, list))}
        return {"__embeddings__": {k: encode(v, tensors, where) for k, v in parts.items() if v is not None},
                "extras": encode(extras, tensors, where)}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, tensors, where), encode(v, tensors, where)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v, tensors, where) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise JobStoreError(f"{where}: a value of type {type(value).__name__} cannot be stored in a job store "
                        "(store tensors, Embeddings, numbers, strings, lists or dicts)")


def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if isinstance(value, dict) and "__embeddings__" in value:
        parts = {k: decode(v, tensors) for k, v in value["__embeddings__"].items()}
        return Embeddings(**parts, extras=decode(value.get("extras", {}), tensors))
    if isinstance(value, dict) and "__dict__" in value:
        return {decode(k, tensors): decode(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    return value


class JobStore:
    """Finished inputs of one pipeline, keyed by :func:`item_key`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "rows TEXT, tensors BLOB, failures TEXT)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                             "sha256 TEXT)")
        except (sqlite3.Error, OSError) as exc:
            raise JobStoreError(f"job store {self.path} cannot be opened: {exc}") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> list[dict[str, Any]] | None:
        """The output rows of a finished input, or None if it has to be computed."""
        with self._lock:
            found = self._db.execute("SELECT rows, tensors FROM items WHERE key = ? AND status = 'done'", (key,)).fetchone()
        if found is None:
            return None
        from safetensors.torch import load

        tensors = load(found[1]) if found[1] else {}
        return decode(json.loads(found[0]), tensors)

    def content_hash(self, path: str) -> str:
        """The file's sha256, read from the store while its size and mtime are unchanged."""
        from vtzoo.registry.weights import sha256_of

        stat = os.stat(path)
        real = os.path.realpath(path)
        with self._lock:
            found = self._db.execute("SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
                                     (real, stat.st_size, stat.st_mtime_ns)).fetchone()
        if found:
            return found[0]
        digest = sha256_of(real)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", (real, stat.st_size, stat.st_mtime_ns, digest))
        return digest

    def put_done(self, key: str, rows: list[dict[str, Any]]) -> None:
        self.put_done_many([(key, rows)])

    def put_done_many(self, entries: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Record finished inputs in one transaction."""
        from safetensors.torch import save

        records = []
        for key, rows in entries:
            tensors: dict[str, torch.Tensor] = {}
            payload = json.dumps(encode(rows, tensors, f"job store {self.path}, input {key}"))
            records.append((key, payload, save(tensors) if tensors else b""))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO items VALUES (?, 'done', ?, ?, NULL)", records)
            self._db.execute("COMMIT")

    def put_failed(self, key: str, failures: list[dict[str, str]]) -> None:
        """Failed inputs are recorded for the report, and computed again on the next run."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO items VALUES (?, 'failed', NULL, NULL, ?)", (key, json.dumps(failures)))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
