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
import time
from pathlib import Path

import pytest

BACKENDS = ("embedded", "milvus-lite", "milvus-server")
SESSION_TTL = 8  # seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reusable_address_config():
    from milvus import MilvusServerConfig

    class ReusableAddressConfig(MilvusServerConfig):
        """The package checks that a port is free by binding it without SO_REUSEADDR, which fails
        for a minute after a kill (the dead server's connections linger in TIME_WAIT); Milvus
        itself binds with SO_REUSEADDR, so a restart on the same port is checked the same way."""

        def try_bind_port(self, port):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
                return sock
            except OSError:
                sock.close()
                return None

    return ReusableAddressConfig()


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

        self.server = MilvusServer(_reusable_address_config(), proxy_port=self.port)
        self.server.config.extra_configs = {
            **{f"{part}.ip": "127.0.0.1" for part in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord",
                                                      "indexNode", "dataCoord", "dataNode")},
            # a restarted server waits for the killed one's sessions to expire before it serves
            # the collections again: 30 s by default
            "common.session.ttl": SESSION_TTL,
        }
        self.server.set_base_dir(str(self.base_dir))
        self.server.start()
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed on the way out."""
        os.kill(self.server.server_proc.pid, signal.SIGKILL)
        self.server.server_proc.wait()

    def stop(self) -> None:
        """At the end of the session: killed too (a graceful stop waits for the server's timeouts,
        and its data folder is thrown away)."""
        proc = self.server.server_proc if self.server is not None else None
        if proc is not None and proc.poll() is None:
            self.kill()


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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session: a head and a second node process with 1 CPU each
    (the 2 CPUs of ``ray.init(num_cpus=2)``, over two nodes so a test can see the work spread)."""
    ray = pytest.importorskip("ray", reason="the Ray runner tests need ray[data] (vtzoo[ray])")
    from ray.cluster_utils import Cluster

    ray.shutdown()
    small = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    cluster.add_node(**small)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
