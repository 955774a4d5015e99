"""Vector index benchmark: embedded candidates (and a Milvus server) at growing collection sizes.

    python benchmarks/index_bench.py [--sizes 10000 100000 1000000] [--dim 512] [--queries 200]
                                     [--backends numpy faiss-flat faiss-hnsw lancedb-flat ...]
                                     [--json benchmarks/results/index_backends.json]

For every (backend, size) it reports, measured in a fresh process so memory figures do not mix:

* ``build_s`` / ``build_rate``: from an empty store to one that answers searches at the measured
  speed (writes in batches, then whatever index build, flush and load the backend needs);
* ``p50_ms`` / ``p99_ms``: one query at a time, top-10, after 10 warm-up queries;
* ``recall_at_10``: the share of the exact top-10 (numpy, fp32) that the backend returns;
* ``rss_mb``: peak resident memory of the process plus any server process it started.

The vectors are not uniform noise (no real embedding is): they are drawn around 2,000 random
centres, L2-normalised, and the queries are held-out draws from the same mixture. Each backend is
used as well as its documentation says: Milvus with inserts in batches of 10,000, one flush, an
HNSW index built and loaded, ``Bounded`` consistency (it also reports ``p50_ms_strong``, a search
that waits for every write, and ``batch10_ms_per_query``, ten queries per call); LanceDB with an
IVF-HNSW-SQ index (and without one); FAISS flat, HNSW and IVF (an index that builds fast enough
for 1M vectors here). ``config`` in each result says how the backend was set up.

LanceDB is not one of vtzoo's dependencies: ``pip install lancedb`` for its rows (0.40 measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

TOP_K = 10
BATCH = 10_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 100, 96


# -- data -------------------------------------------------------------------------------------
def make_data(folder: Path, size: int, dim: int, queries: int, seed: int = 0) -> dict[str, Path]:
    """Vectors, queries and the exact top-10 of each query, written once as .npy files; and 50 more
    queries with their top-10 (``tuning``) for a backend that tunes a search parameter."""
    files = {name: folder / f"{name}_{size}_{dim}.npy" for name in ("vectors", "queries", "truth", "tuning", "tuning_truth")}
    if all(f.exists() for f in files.values()):
        return files
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            stop = min(start + 100_000, n)
            picked = centres[rng.integers(0, len(centres), stop - start)]
            block = picked + 0.6 * rng.standard_normal((stop - start, dim)).astype(np.float32)
            out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out

    vectors, query, tuning = draw(size), draw(queries), draw(50)
    np.save(files["vectors"], vectors)
    np.save(files["queries"], query)
    np.save(files["truth"], exact_top_k(vectors, query))
    np.save(files["tuning"], tuning)
    np.save(files["tuning_truth"], exact_top_k(vectors, tuning))
    return files


def exact_top_k(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = queries @ vectors.T
    top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (servers a client library started for us)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM) plus the current RSS of the server processes it started."""
    def field(pid: Any, name: str) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(name):
                    return float(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    return field("self", "VmHWM") + sum(field(pid, "VmRSS") for pid in descendants(os.getpid()))


# -- backends: build(vectors) then search(query) -> ids --------------------------------------
class Backend:
    config: dict[str, Any] = {}

    def __init__(self, folder: Path, tuning: tuple[np.ndarray, np.ndarray]):
        self.folder = folder
        self.tuning = tuning  # queries and their exact top-10, apart from the measured ones

    def extra(self, queries: np.ndarray) -> dict[str, Any]:
        """Backend-specific figures beside the common ones."""
        return {}

    def build(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def search(self, query: np.ndarray) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NumpyBrute(Backend):
    config = {"threads": 1}

    def build(self, vectors):
        from threadpoolctl import threadpool_limits

        self.vectors = np.ascontiguousarray(vectors)
        self.one_thread = threadpool_limits(1)  # one query: BLAS threads would only wait on each other

    def search(self, query):
        scores = self.vectors @ query
        top = np.argpartition(-scores, TOP_K)[:TOP_K]
        return top[np.argsort(-scores[top])].tolist()


class FaissFlat(Backend):
    def build(self, vectors):
        import faiss

        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, query):
        import faiss

        faiss.omp_set_num_threads(1)  # one query: threads only wait on each other
        return self.index.search(query[None], TOP_K)[1][0].tolist()


class FaissIVF(FaissFlat):
    """IVF-Flat: k-means cells (trained on a sample), a query scans the nearest ``nprobe`` cells."""

    def build(self, vectors):
        import faiss

        cells = max(16, int(np.sqrt(len(vectors))))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        self.index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 30 * cells), replace=False)
        self.index.train(vectors[np.sort(sample)])
        for start in range(0, len(vectors), BATCH):
            self.index.add(vectors[start : start + BATCH])
        self.index.nprobe = self._tuned_nprobe(vectors, cells)
        self.config = {"index": f"IVF{cells},Flat", "nprobe": self.index.nprobe, "nprobe_tuned_for_recall": 0.95}

    def _tuned_nprobe(self, vectors: np.ndarray, cells: int) -> int:
        """The fewest cells to scan for recall@10 >= 0.95 on the tuning queries."""
        queries, truth = self.tuning
        nprobe = 1
        while nprobe < cells:
            self.index.nprobe = nprobe
            found = self.index.search(queries, TOP_K)[1]
            if np.mean([len(set(f) & set(t)) for f, t in zip(found, truth)]) / TOP_K >= 0.95:
                break
            nprobe *= 2
        return min(nprobe, cells)


class FaissHNSW(FaissFlat):
    config = {"index": f"HNSW M={HNSW_M} efConstruction={HNSW_EF_CONSTRUCTION}", "efSearch": HNSW_EF_SEARCH}

    def build(self, vectors):
        import faiss

        self.index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        for start in range(0, len(vectors), BATCH):
            self.index.add(vectors[start : start + BATCH])
        self.index.hnsw.efSearch = HNSW_EF_SEARCH


class VtzooStore(Backend):
    """vtzoo's own embedded store (FAISS over SQLite), through the VectorIndex interface."""

    @property
    def config(self):
        from vtzoo.pipelines import embedded_index as store

        return {"index": f"exact up to {store.EXACT_LIMIT} rows, then HNSW M={store.HNSW_M} "
                         f"efConstruction={store.HNSW_EF_CONSTRUCTION}", "efSearch": store.HNSW_EF_SEARCH,
                "insert_batch": BATCH}

    def build(self, vectors):
        import torch

        from vtzoo.pipelines.index import VectorIndex

        self.index = VectorIndex(str(self.folder / "store.vtzoo"))
        rows = [{"id": str(i), "path": f"v{i}.mp4", "content_hash": str(i), "duration": 1.0, "start": 0.0, "end": 1.0}
                for i in range(len(vectors))]
        for start in range(0, len(vectors), BATCH):
            self.index.insert_vectors("bench", torch.from_numpy(vectors[start : start + BATCH]), rows[start : start + BATCH])
        self.index.flush("bench")
        self.index.search("bench", self._emb(vectors[0]))  # builds the ANN structure

    @staticmethod
    def _emb(query):
        import torch

        from vtzoo.operators.base import Embeddings

        return Embeddings(pooled=torch.from_numpy(query[None].copy()))

    def search(self, query):
        return [int(h["id"]) for h in self.index.search("bench", self._emb(query), top_k=TOP_K)]


class VtzooStoreFastBuild(VtzooStore):
    """The same store with a sparser, cheaper HNSW graph (M=16, efConstruction=40): its default
    graph builds at ~600 vectors/s here, ~30 min for 1M vectors."""

    def build(self, vectors):
        from vtzoo.pipelines import embedded_index as store

        store.HNSW_M, store.HNSW_EF_CONSTRUCTION = 16, 40  # this worker process only
        super().build(vectors)


class LanceFlat(Backend):
    index_type: str | None = None

    def build(self, vectors):
        import lancedb
        import pyarrow as pa

        self.db = lancedb.connect(str(self.folder / "lance"))
        dim = vectors.shape[1]
        schema = pa.schema([pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float32(), dim))])
        self.table = self.db.create_table("bench", schema=schema)
        for start in range(0, len(vectors), BATCH):
            block = vectors[start : start + BATCH]
            vec = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), dim)
            self.table.add(pa.Table.from_arrays([pa.array(np.arange(start, start + len(block))), vec], schema=schema))
        self.config = {"index": "none (flat scan)", "insert_batch": BATCH}
        if self.index_type:
            partitions = max(1, int(np.sqrt(len(vectors)) / 4))
            self.nprobes = max(1, partitions // 2)
            self.config = {"index": f"{self.index_type} partitions={partitions} m={HNSW_M} "
                                    f"ef_construction={HNSW_EF_CONSTRUCTION}", "nprobes": self.nprobes,
                           "ef": max(HNSW_EF_SEARCH, 10 * TOP_K), "refine_factor": 10, "insert_batch": BATCH}
            self.table.create_index(metric="cosine", vector_column_name="vector", index_type=self.index_type,
                                    num_partitions=partitions, m=HNSW_M,
                                    ef_construction=HNSW_EF_CONSTRUCTION)

    def _query(self, query):
        return self.table.search(query, vector_column_name="vector").metric("cosine").limit(TOP_K).select(["id"])

    def search(self, query):
        return [int(r["id"]) for r in self._query(query).to_arrow().to_pylist()]


class LanceHNSW(LanceFlat):
    index_type = "IVF_HNSW_SQ"

    def _query(self, query):
        return super()._query(query).nprobes(self.nprobes).ef(max(HNSW_EF_SEARCH, 10 * TOP_K)).refine_factor(10)


class MilvusLite(Backend):
    """Milvus (Lite file or server): batched inserts, one flush, an index built and loaded, Bounded reads."""

    index_type, index_build, index_search = "HNSW", {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}, {"ef": HNSW_EF_SEARCH}
    builds_on_load = True  # Milvus Lite builds a collection's index when it is loaded; a server builds it at once
    # no keepalive pings to Lite's server (the options vtzoo uses): with pymilvus's 10 s pings, a
    # call silent for ~30 s got GOAWAY "too_many_pings", and pymilvus's retry of create_index then
    # failed with "index already exists" (what stopped Milvus Lite at 100k before)
    client_options = {"grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}}

    @property
    def config(self):
        return {"index": self.index_type, **self.index_build, **self.index_search, "consistency": "Bounded",
                "insert_batch": BATCH}

    def connect(self):
        return str(self.folder / "milvus.db")

    def build(self, vectors):
        from pymilvus import DataType, MilvusClient

        self.client = MilvusClient(uri=self.connect(), **self.client_options)
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
        self.client.create_collection("bench", schema=schema, consistency_level="Bounded")
        for start in range(0, len(vectors), BATCH):
            block = vectors[start : start + BATCH]
            self.client.insert("bench", [{"id": start + i, "vector": v} for i, v in enumerate(block.tolist())])
        self.client.flush("bench")
        self.client.release_collection("bench")  # indexes are built when a collection is loaded
        for existing in self.client.list_indexes("bench"):  # some versions index a new collection by default
            self.client.drop_index("bench", existing)
        params = self.client.prepare_index_params()
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=self.index_build)
        self.client.create_index("bench", params, sync=False)
        if self.builds_on_load:
            self.client.load_collection("bench", timeout=3600)
            self._wait_until(lambda: self._indexed(len(vectors)))
        else:  # loaded before its index is built, a server searches an interim index (recall 0.72 at 10k)
            self._wait_until(lambda: self._indexed(len(vectors)))
            self.client.load_collection("bench", timeout=3600)

    def _wait_until(self, ready: Callable[[], bool]) -> None:
        deadline = time.time() + 3600
        while not ready() and time.time() < deadline:
            time.sleep(0.5)

    def _indexed(self, rows: int) -> bool:
        info = self.client.describe_index("bench", "vector")
        return int(info.get("indexed_rows", rows)) >= rows and int(info.get("pending_index_rows", 0)) == 0


    def _search(self, queries: list[list[float]], consistency: str = "Bounded"):
        return self.client.search("bench", queries, limit=TOP_K, consistency_level=consistency,
                                  search_params={"metric_type": "IP", "params": self.index_search})

    def search(self, query):
        return [int(h["id"]) for h in self._search([query.tolist()])[0]]

    def extra(self, queries):
        strong = []
        for query in queries[:20]:
            t0 = time.perf_counter()
            self._search([query.tolist()], "Strong")
            strong.append((time.perf_counter() - t0) * 1000)
        batched = len(queries) - len(queries) % 10
        t0 = time.perf_counter()
        for start in range(0, batched, 10):
            self._search(queries[start : start + 10].tolist())
        return {"p50_ms_strong": round(statistics.median(strong), 3),
                "batch10_ms_per_query": round((time.perf_counter() - t0) * 1000 / max(1, batched), 3)}

    def close(self):
        self.client.close()


class MilvusServerBackend(MilvusLite):
    builds_on_load = False
    client_options: dict = {}  # the server allows pymilvus's keepalive pings

    def connect(self):
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(self.folder / "server"))
        self.server.start()
        return f"http://127.0.0.1:{self.server.listen_port}"

    def close(self):
        super().close()
        self.server.server_proc.kill()  # a graceful stop waits out the server's timeouts; the folder is thrown away
        self.server.server_proc.wait()


class MilvusServerIVF(MilvusServerBackend):
    """The server with IVF_FLAT, whose build fits the time a 1M run has here (HNSW's does not);
    ``nprobe`` (per segment) is the smallest power of two that reaches recall@10 >= 0.95 on the
    tuning queries, as for FAISS IVF."""

    index_type, index_build, index_search = "IVF_FLAT", {"nlist": 1024}, {"nprobe": 8}

    def build(self, vectors):
        super().build(vectors)
        queries, truth = self.tuning
        while self.index_search["nprobe"] < self.index_build["nlist"]:
            found = [[int(h["id"]) for h in hits] for hits in self._search(queries.tolist())]
            if np.mean([len(set(f) & set(t)) for f, t in zip(found, truth)]) / TOP_K >= 0.95:
                break
            self.index_search = {"nprobe": 2 * self.index_search["nprobe"]}

    @property
    def config(self):
        return {**super().config, "nprobe_tuned_for_recall": 0.95}


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "numpy": NumpyBrute, "faiss-flat": FaissFlat, "faiss-hnsw": FaissHNSW, "faiss-ivf": FaissIVF,
    "vtzoo-store": VtzooStore, "vtzoo-store-fast-build": VtzooStoreFastBuild, "lancedb-flat": LanceFlat, "lancedb-ivf-hnsw-sq": LanceHNSW, "milvus-lite": MilvusLite,
    "milvus-server": MilvusServerBackend, "milvus-server-ivf": MilvusServerIVF,
}


# -- one measurement (in its own process) -----------------------------------------------------
def measure(backend_name: str, files: dict[str, str], folder: Path) -> dict[str, Any]:
    vectors = np.load(files["vectors"], mmap_mode="r")
    queries, truth = np.load(files["queries"]), np.load(files["truth"])
    backend = BACKENDS[backend_name](folder, (np.load(files["tuning"]), np.load(files["tuning_truth"])))
    start = time.perf_counter()
    backend.build(np.ascontiguousarray(vectors))
    build_s = time.perf_counter() - start
    for query in queries[:10]:
        backend.search(query)
    latencies, hits = [], 0
    for query, expected in zip(queries, truth):
        t0 = time.perf_counter()
        found = backend.search(query)
        latencies.append((time.perf_counter() - t0) * 1000)
        hits += len(set(found[:TOP_K]) & set(expected.tolist()))
    extra = backend.extra(queries)
    rss = peak_rss_mb()
    backend.close()
    latencies.sort()
    return {"backend": backend_name, "vectors": len(vectors), "dim": int(vectors.shape[1]), "build_s": round(build_s, 2),
            "build_rate": round(len(vectors) / build_s), "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
            "recall_at_10": round(hits / (TOP_K * len(queries)), 4), "rss_mb": round(rss), **extra,
            "config": backend.config}


def run_isolated(backend: str, files: dict[str, Path], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"vtzoo-index-bench-{backend}-") as folder:
        command = [sys.executable, __file__, "--worker", backend, "--files", json.dumps({k: str(v) for k, v in files.items()}),
                   "--folder", folder]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"backend": backend, "error": f"did not finish within {timeout:.0f} s"}
    if done.returncode != 0:
        return {"backend": backend, "error": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=[b for b in BACKENDS if b != "milvus-server"], choices=list(BACKENDS))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one (backend, size) may take")
    parser.add_argument("--data-dir", default=None, help="where the generated vectors are kept (default: a temp dir)")
    parser.add_argument("--json", default=None, help="append one JSON object per (backend, size) to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--files", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, json.loads(args.files), Path(args.folder))))
        return
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="vtzoo-index-bench-data-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        files = make_data(data_dir, size, args.dim, args.queries)
        for backend in args.backends:
            load_before = os.getloadavg()[0]
            row = {"vectors": size, "dim": args.dim, **run_isolated(backend, files, args.timeout),
                   "cpus": os.cpu_count(), "queries": args.queries,
                   "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)]}  # the machine is shared
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
