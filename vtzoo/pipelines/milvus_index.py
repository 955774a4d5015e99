"""The Milvus backend of :class:`~vtzoo.pipelines.index.VectorIndex`: a Milvus Lite file or a server.

Milvus Lite serves a local file to one process. While an index job holds it, vtzoo publishes the
job's local endpoint beside the file, so a search from another process goes through the same
server instead of failing on the lock; a second process that cannot join gets a clear error,
never a second writer on the file. When the process serving the file exits, one that joined it
serves the file itself (or joins whichever took it over) and repeats the call that failed:
every call it makes is safe to repeat (upserts and deletes by id are idempotent).

A collection records the operator's fingerprint in its properties and its description (Milvus
Lite keeps only the first, older servers may keep only the second). Counts ask for ``Strong``
consistency (every client's writes); a search asks for ``Strong`` right after this client wrote
(it sees its own writes and deletes) and for ``Bounded`` otherwise, which does not wait for the
server's time tick (~200 ms).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from vtzoo.pipelines.index_base import (
    MAX_PATH, ROW_FIELDS, IndexUnavailable, VectorIndex, VectorIndexError, _quote, check_local_target, is_local_uri,
    is_milvus_lite, is_server_uri,
)

_ENDPOINT_SUFFIX = ".endpoint.json"
_FINGERPRINT_KEY = "vtzoo.fingerprint"
_RPC_TIMEOUT = 20.0  # seconds: a server that does not answer a write within this is gone
_CONNECT_TIMEOUT = 10.0
_TAKEOVER_TIMEOUT = 30.0  # seconds for an exiting Lite server's process to let go of the file
# Milvus Lite's gRPC server keeps gRPC's default ping policy (while no data flows, at most one ping
# per 5 minutes; the third early one closes the connection with GOAWAY "too_many_pings"), and
# pymilvus pings every 10 s, also during a call. So a Lite call that runs silently for ~30 s (the
# index build of a large collection when it is loaded) lost its connection, and pymilvus repeated
# it. On a loopback connection keepalive finds nothing a closed socket would not: no pings.
_LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MilvusIndex(VectorIndex):
    """``MilvusIndex("./vtzoo.db")`` (Milvus Lite) or ``MilvusIndex("http://127.0.0.1:19530")``."""

    @classmethod
    def handles(cls, uri: str) -> bool:
        return is_server_uri(uri) or is_milvus_lite(uri)

    backend = "milvus"

    def __init__(self, uri: str, token: str | None = None, create: bool = True):
        super().__init__(uri)
        self.supports_concurrent_writers = not is_local_uri(uri)
        self._lock = threading.RLock()
        self._loaded: set[str] = set()
        self._dims: dict[str, int] = {}
        self._wrote = False  # since the last search: the next one must see those writes
        self._joined: str | None = None  # the endpoint of another process serving our Lite file
        if is_local_uri(uri) and not create and not Path(uri).exists():
            raise VectorIndexError(f"index database {uri} does not exist (index some videos first: vtzoo index DIR --db {uri})")
        self.client = self._connect(token)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, token: str | None):
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise VectorIndexError("the Milvus backend needs pymilvus: pip install 'vtzoo[index]'") from None
        if not is_local_uri(self.uri):
            try:
                return MilvusClient(uri=self.uri, token=token or "", timeout=_CONNECT_TIMEOUT)
            except Exception as exc:
                raise VectorIndexError(f"cannot reach Milvus at {self.uri}: {_first_line(exc)}") from None
        check_local_target(self.uri)
        endpoint = self._local_endpoint()
        if endpoint is None:
            raise VectorIndexError(f"index database {self.uri} is locked by another process that does not share it; "
                                   "wait for it to finish, or use a Milvus server URI for concurrent access")
        return MilvusClient(uri=endpoint, grpc_options=_LITE_GRPC_OPTIONS)

    def _local_endpoint(self) -> str | None:
        """Serve the local Lite file ``self.uri`` here, or join the process that serves it (None:
        a process holds it without sharing it)."""
        path = Path(self.uri).resolve()
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            raise VectorIndexError("a Milvus Lite database needs milvus-lite: pip install 'vtzoo[index]'") from None
        with _quiet(logging.getLogger("milvus_lite.server_manager")):  # a held lock is not an error here
            endpoint = server_manager_instance.start_and_get_uri(str(path))
        if endpoint is not None:
            self._publish_endpoint(path, endpoint)
            self._joined = None
            return endpoint
        self._joined = self._read_endpoint(path)
        return self._joined

    def _take_over(self) -> bool:
        """The process whose Lite server we joined went away: serve the file here, or join the one
        that took it over. False if this index did not join one, or nobody serves the file in time."""
        from pymilvus import MilvusClient

        gone = self._joined
        if gone is None:
            return False
        deadline = time.monotonic() + _TAKEOVER_TIMEOUT
        while time.monotonic() < deadline:
            endpoint = self._local_endpoint()
            if endpoint is not None and (self._joined is None or endpoint != gone):  # ours, or a new owner's
                with contextlib.suppress(Exception):  # the old connection is dead already
                    self.client.close()
                self.client = MilvusClient(uri=endpoint, grpc_options=_LITE_GRPC_OPTIONS)
                self._loaded.clear()
                return True
            self._joined = gone  # still the old owner's: it has not let go of the file yet
            time.sleep(0.2)
        return False

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

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One client call; a server that stopped answering becomes :class:`IndexUnavailable`,
        unless it was another process's Lite server and this process could take over the file."""
        with self._lock:
            try:
                return self._call_once(method, *args, **kwargs)
            except IndexUnavailable:
                if not self._take_over():
                    raise
                return self._call_once(method, *args, **kwargs)

    def _call_once(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from pymilvus.exceptions import MilvusException, MilvusUnavailableException

        with self._lock:
            try:
                return getattr(self.client, method)(*args, **kwargs)
            except MilvusUnavailableException as exc:
                raise IndexUnavailable(f"Milvus at {self.uri} stopped answering: {_first_line(exc)}") from None
            except MilvusException as exc:
                if _looks_unavailable(exc):
                    raise IndexUnavailable(f"Milvus at {self.uri} stopped answering: {_first_line(exc)}") from None
                raise VectorIndexError(f"Milvus at {self.uri}: {method} failed: {_first_line(exc)}") from None

    def close(self) -> None:
        with self._lock:
            self.client.close()

    # -- collections --------------------------------------------------------------------------
    def vector(self, collection: str, row_id: str) -> list[float] | None:
        rows = self._call("get", collection, ids=[row_id], output_fields=["vector"])
        return list(rows[0]["vector"]) if rows else None

    def list_collections(self) -> list[str]:
        return list(self._call("list_collections"))

    def has_collection(self, name: str) -> bool:
        return bool(self._call("has_collection", name))

    def _create_collection(self, name: str, dim: int, fingerprint: str | None) -> None:
        from pymilvus import DataType

        with self._lock:
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=True,
                                               description=json.dumps({"vtzoo": {"fingerprint": fingerprint}}))
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=160)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
            schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
            schema.add_field("duration", DataType.FLOAT)
            schema.add_field("start", DataType.FLOAT)
            schema.add_field("end", DataType.FLOAT)
            index_params = self.client.prepare_index_params()
            index_params.add_index(field_name="vector", metric_type="COSINE", index_type="AUTOINDEX")
            self._call("create_collection", name, schema=schema, index_params=index_params)
            if fingerprint:  # Milvus Lite keeps properties but drops descriptions; a 2.3 server keeps both
                try:
                    self.client.alter_collection_properties(name, properties={_FINGERPRINT_KEY: fingerprint})
                except Exception:
                    pass

    def _describe(self, name: str) -> dict[str, Any]:
        return self._call("describe_collection", name)

    def dimension(self, name: str) -> int:
        if name not in self._dims:
            for f in self._describe(name)["fields"]:
                if f["name"] == "vector":
                    self._dims[name] = int(f["params"]["dim"])
                    break
            else:
                raise VectorIndexError(f"collection '{name}' has no vector field")
        return self._dims[name]

    def fingerprint(self, name: str) -> str | None:
        info = self._describe(name)
        if (info.get("properties") or {}).get(_FINGERPRINT_KEY):
            return info["properties"][_FINGERPRINT_KEY]
        try:
            return json.loads(info.get("description") or "{}").get("vtzoo", {}).get("fingerprint")
        except (ValueError, AttributeError):
            return None

    def _ensure_loaded(self, name: str) -> None:
        """Milvus searches only loaded collections; a reopened database starts with none loaded."""
        if name in self._loaded:
            return
        state = str(self._call("get_load_state", name).get("state", ""))
        if "Loaded" not in state or "NotLoad" in state:
            self._call("load_collection", name)
        self._loaded.add(name)

    def flush(self, name: str) -> None:
        if self.has_collection(name):
            self._call("flush", name)

    def count(self, name: str) -> int:
        if not self.has_collection(name):
            return 0
        self._ensure_loaded(name)
        rows = self._call("query", name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def drop(self, name: str) -> None:
        self._call("drop_collection", name)
        self._loaded.discard(name)
        self._dims.pop(name, None)

    # -- rows ---------------------------------------------------------------------------------
    def _write(self, collection: str, rows: list[dict[str, Any]]) -> None:
        self._call("upsert", collection, rows, timeout=_RPC_TIMEOUT)
        self._wrote = True

    def _delete(self, collection: str, ids: list[str] | None, filter: str) -> int:
        self._ensure_loaded(collection)
        if ids:
            result = self._call("delete", collection, ids=ids)
        else:
            result = self._call("delete", collection, filter=filter)
        self._wrote = True
        return int(result.get("delete_count", 0) if isinstance(result, dict) else len(result or []))

    def _nearest(self, collection: str, vector: list[float], limit: int, filter: str) -> list[dict[str, Any]]:
        self._ensure_loaded(collection)
        level, self._wrote = ("Strong" if self._wrote else "Bounded"), False
        raw = self._call("search", collection, data=[vector], limit=limit, filter=filter,
                         output_fields=list(ROW_FIELDS[1:]), consistency_level=level)
        return [{"id": h["id"], "score": float(h["distance"]), **h["entity"]} for h in raw[0]]

    def iter_rows(self, collection: str, with_vectors: bool = True, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Pages in primary-key order (``id > last``); the caller checks the total against count()
        (pymilvus's query iterator returns nothing from a 2.3 server)."""
        self._ensure_loaded(collection)
        fields = list(ROW_FIELDS) + (["vector"] if with_vectors else [])
        last = None
        while True:
            where = "" if last is None else f'id > "{_quote(last)}"'
            block = self._call("query", collection, filter=where, output_fields=fields, limit=batch,
                               consistency_level="Strong")
            if not block:
                return
            block = sorted(block, key=lambda row: row["id"])
            last = block[-1]["id"]
            yield [{**{f: row[f] for f in fields}, **({"vector": [float(x) for x in row["vector"]]} if with_vectors else {})}
                   for row in block]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _looks_unavailable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("unavailable", "deadline", "connection refused", "failed to connect",
                                         "timeout", "socket closed", "channel"))


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    previous, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = previous
