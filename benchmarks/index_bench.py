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
used as well as its documentation says: Milvus with an HNSW index built and loaded and
``Bounded`` consistency, LanceDB with an IVF-HNSW-SQ index (and without one), FAISS flat and HNSW.
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
    """Vectors, queries and the exact top-10 of each query, written once as .npy files."""
    files = {name: folder / f"{name}_{size}_{dim}.npy" for name in ("vectors", "queries", "truth")}
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

    vectors, query = draw(size), draw(queries)
    np.save(files["vectors"], vectors)
    np.save(files["queries"], query)
    np.save(files["truth"], exact_top_k(vectors, query))
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
    def __init__(self, folder: Path):
        self.folder = folder

    def build(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def search(self, query: np.ndarray) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NumpyBrute(Backend):
    def build(self, vectors):
        self.vectors = np.ascontiguousarray(vectors)

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


class FaissHNSW(FaissFlat):
    def build(self, vectors):
        import faiss

        self.index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        for start in range(0, len(vectors), BATCH):
            self.index.add(vectors[start : start + BATCH])
        self.index.hnsw.efSearch = HNSW_EF_SEARCH


class VtzooStore(Backend):
    """vtzoo's own embedded store (FAISS over SQLite), through the VectorIndex interface."""

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
        if self.index_type:
            partitions = max(1, int(np.sqrt(len(vectors)) / 4))
            self.nprobes = max(1, partitions // 2)
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
    """Milvus (Lite file or server): batched inserts, flush, HNSW built and loaded, Bounded reads."""

    def connect(self):
        return str(self.folder / "milvus.db")

    def build(self, vectors):
        from pymilvus import DataType, MilvusClient

        self.client = MilvusClient(uri=self.connect())
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
        self.client.create_collection("bench", schema=schema, consistency_level="Bounded")
        for start in range(0, len(vectors), BATCH):
            block = vectors[start : start + BATCH]
            self.client.insert("bench", [{"id": start + i, "vector": v} for i, v in enumerate(block.tolist())])
        self.client.flush("bench")
        for existing in self.client.list_indexes("bench"):  # some versions index a new collection by default
            self.client.release_collection("bench")
            self.client.drop_index("bench", existing)
        params = self.client.prepare_index_params()
        params.add_index(field_name="vector", index_type="HNSW", metric_type="IP",
                         params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        self.client.create_index("bench", params)
        self.client.load_collection("bench")
        self._wait_indexed(len(vectors))

    def _wait_indexed(self, rows: int) -> None:
        deadline = time.time() + 3600
        while time.time() < deadline:
            info = self.client.describe_index("bench", "vector")
            if int(info.get("indexed_rows", rows)) >= rows and int(info.get("pending_index_rows", 0)) == 0:
                return
            time.sleep(0.5)

    def search(self, query):
        found = self.client.search("bench", [query.tolist()], limit=TOP_K, consistency_level="Bounded",
                                   search_params={"metric_type": "IP", "params": {"ef": HNSW_EF_SEARCH}})
        return [int(h["id"]) for h in found[0]]

    def close(self):
        self.client.close()


class MilvusServerBackend(MilvusLite):
    def connect(self):
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(self.folder / "server"))
        self.server.start()
        return f"http://127.0.0.1:{self.server.listen_port}"

    def close(self):
        super().close()
        self.server.stop()


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "numpy": NumpyBrute, "faiss-flat": FaissFlat, "faiss-hnsw": FaissHNSW, "vtzoo-store": VtzooStore,
    "lancedb-flat": LanceFlat, "lancedb-ivf-hnsw-sq": LanceHNSW, "milvus-lite": MilvusLite,
    "milvus-server": MilvusServerBackend,
}


# -- one measurement (in its own process) -----------------------------------------------------
def measure(backend_name: str, files: dict[str, str], folder: Path) -> dict[str, Any]:
    vectors = np.load(files["vectors"], mmap_mode="r")
    queries, truth = np.load(files["queries"]), np.load(files["truth"])
    backend = BACKENDS[backend_name](folder)
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
    rss = peak_rss_mb()
    backend.close()
    latencies.sort()
    return {"backend": backend_name, "vectors": len(vectors), "dim": int(vectors.shape[1]), "build_s": round(build_s, 2),
            "build_rate": round(len(vectors) / build_s), "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
            "recall_at_10": round(hits / (TOP_K * len(queries)), 4), "rss_mb": round(rss)}


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
            row = {"vectors": size, "dim": args.dim, **run_isolated(backend, files, args.timeout),
                   "cpus": os.cpu_count(), "queries": args.queries}
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
