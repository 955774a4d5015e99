"""A job store makes long runs resumable: every finished input is written down with its outputs.

One SQLite file (stdlib, WAL journal): a row per input key with its status, its output rows
(JSON, with tensors in a safetensors blob) or its failures. An input is committed only once
every row it produced has left the pipeline, so after a crash (even SIGKILL) an input is
either fully recorded or computed again, never half of each.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import torch

from vtzoo.embeddings import Embeddings
from vtzoo.errors import VtzooError


class JobStoreError(VtzooError, RuntimeError):
    pass


def item_key(values: list[Any]) -> str:
    """A stable key for a pipeline input: paths and strings as written, bytes by their sha256."""
    parts = []
    for value in values:
        if isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(json.dumps(value))
        elif isinstance(value, os.PathLike):
            parts.append(json.dumps(os.fspath(value)))
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

    def put_done(self, key: str, rows: list[dict[str, Any]]) -> None:
        from safetensors.torch import save

        tensors: dict[str, torch.Tensor] = {}
        payload = json.dumps(encode(rows, tensors, f"job store {self.path}, input {key}"))
        blob = save(tensors) if tensors else b""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO items VALUES (?, 'done', ?, ?, NULL)", (key, payload, blob))

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
