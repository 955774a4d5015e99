"""Index fixtures: every backend behind VectorIndex, and a real Milvus server for the session.

``index_uri`` is parametrised over the embedded store, a Milvus Lite file and the Milvus
standalone server of the PyPI ``milvus`` package (started once per session on 127.0.0.1, ~10 s),
so the same test runs against each through the same code.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BACKENDS = ("embedded", "milvus-lite", "milvus-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MilvusTestServer:
    """A Milvus standalone process with a fixed port, which tests may kill and restart."""

    def __init__(self, base_dir: Path):
        self.base_dir, self.port = base_dir, _free_port()
        self.server = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MilvusTestServer":
        from milvus import MilvusServer

        self.server = MilvusServer(proxy_port=self.port)
        self.server.config.extra_configs = {f"{part}.ip": "127.0.0.1" for part in
                                            ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord",
                                             "indexNode", "dataCoord", "dataNode")}
        self.server.set_base_dir(str(self.base_dir))
        self.server.start()
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed on the way out."""
        os.kill(self.server.server_proc.pid, signal.SIGKILL)
        self.server.server_proc.wait()

    def stop(self) -> None:
        proc = self.server.server_proc if self.server is not None else None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    pytest.importorskip("milvus", reason="the Milvus server tests need the 'milvus' package (vtzoo[test])")
    server = MilvusTestServer(tmp_path_factory.mktemp("milvus-server")).start()
    yield server
    server.stop()


_names = itertools.count()


@pytest.fixture(params=BACKENDS)
def index_uri(request, tmp_path) -> str:
    """A fresh database of each backend (on the shared server: a fresh database name prefix is
    not available in Milvus 2.3, so tests use distinct collection names)."""
    if request.param == "embedded":
        return str(tmp_path / "store")
    if request.param == "milvus-lite":
        return str(tmp_path / "lite.db")
    server = request.getfixturevalue("milvus_server")
    return server.uri


@pytest.fixture
def fresh_name(request):
    """A collection name unique in the session (the server database is shared by all tests)."""
    return lambda base: f"{base}_{next(_names)}_{int(time.time() * 1000) % 100000}"
