"""The streaming engine: order, batching, error policies, bounded look-ahead, resumable jobs."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from vtzoo.errors import InputError
from vtzoo.pipelines import Pipeline, PipelineError


def test_results_keep_input_order_with_threads_and_batches():
    def jitter(x):
        time.sleep(random.random() * 0.01)
        return x * 10

    pipe = Pipeline("x").map("x", "y", jitter, workers=3).map("y", "z", lambda y: y + 1).output("x", "z")
    result = pipe.run(range(40), progress=False)
    assert result.column("x") == list(range(40))
    assert result.column("z") == [x * 10 + 1 for x in range(40)]


def test_skip_policy_reports_every_failed_item_and_keeps_the_rest():
    def fragile(x):
        if x % 7 == 3:
            raise ValueError(f"cannot handle {x}")
        return x

    pipe = Pipeline("x").map("x", "y", fragile, on_error="skip", name="fragile").output("y")
    result = pipe.run(range(20), progress=False)
    assert result.column("y") == [x for x in range(20) if x % 7 != 3]
    assert [(f.index, f.step) for f in result.failures] == [(3, "fragile"), (10, "fragile"), (17, "fragile")]
    assert "cannot handle 10" in str(result.failures[1])


def test_raise_policy_stops_with_the_step_and_input_named():
    pipe = Pipeline("x").map("x", "y", lambda x: 1 / (x - 2), name="divide").output("y")
    with pytest.raises(PipelineError, match=r"input 2 .*step 'divide'.*ZeroDivisionError"):
        pipe.run(range(5), progress=False)


@pytest.mark.parametrize("resumable", [False, True])
def test_failure_lines_name_the_input_path(tmp_path, resumable):
    """A failure reads "<path>: step ...", never "input 1 (1)" or a job-store key."""
    def decode(path):
        if path.endswith("broken.mp4"):
            raise ValueError("cannot decode")
        return path

    paths = [str(tmp_path / "good.mp4"), str(tmp_path / "broken.mp4")]
    pipe = Pipeline("path").map("path", "clip", decode, on_error="skip", name="decode").output("clip")
    result = pipe.run(paths, progress=False, job_store=str(tmp_path / "job.sqlite") if resumable else None)
    assert [str(f) for f in result.failures] == [f"{paths[1]}: step 'decode': ValueError: cannot decode"]
    assert result.failures[0].source == paths[1]


def test_failure_of_a_non_path_input_names_its_position_and_value():
    def divide(x, y):
        if y == 0:
            raise ValueError("cannot divide by zero")  # a bad value: the row fails, the others go on
        return x / y

    pipe = Pipeline(["x", "y"]).map(["x", "y"], "z", divide, on_error="skip", name="divide").output("z")
    result = pipe.run([(1, 1), (3, 0)], progress=False)
    assert str(result.failures[0]).startswith("input 1 (3, 0): step 'divide': ValueError")


def test_a_failing_batch_is_retried_item_by_item(monkeypatch):
    from vtzoo.pipelines import ops

    calls = []

    class BatchOp(ops.PipelineOp):
        batched = True

        def call(self, value):
            return self.call_batch([(value,)])[0]

        def call_batch(self, rows):
            calls.append(len(rows))
            if any(v == 5 for (v,) in rows):
                raise InputError("corrupt item", source="item 5")
            return [v * 2 for (v,) in rows]

    monkeypatch.setitem(ops._BUILTIN, "test.double", lambda context, step: BatchOp())
    pipe = Pipeline("x").map("x", "y", "test.double", batch_size=4, on_error="skip").output("x", "y")
    result = pipe.run(range(10), progress=False)
    assert result.column("x") == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert result.column("y") == [0, 2, 4, 6, 8, 12, 14, 16, 18]
    assert [f.index for f in result.failures] == [5]
    assert calls[:2] == [4, 4] and calls.count(1) == 4  # the batch with item 5 re-ran one by one


def test_a_programming_error_stops_the_run_instead_of_failing_every_row():
    calls = []

    def buggy(x):
        calls.append(x)
        return x.no_such_attribute  # AttributeError: a bug, not a bad row

    pipe = Pipeline("x").map("x", "y", buggy, on_error="skip", name="buggy").output("y")
    with pytest.raises(PipelineError, match=r"input 0 .*step 'buggy'.*AttributeError"):
        pipe.run(range(10), progress=False)
    assert calls == [0]


def test_flat_map_and_filter_expand_and_drop_in_order():
    pipe = (
        Pipeline("n")
        .flat_map("n", ["n_piece", "k"], lambda n: [(n, k) for k in range(n)])
        .filter("k", lambda k: k % 2 == 0)
        .output("n_piece", "k")
    )
    result = pipe.run([3, 0, 2], progress=False)
    assert [(r["n_piece"], r["k"]) for r in result.rows] == [(3, 0), (3, 2), (2, 0)]
    assert pipe(4) == [{"n_piece": 4, "k": 0}, {"n_piece": 4, "k": 2}]


def test_threaded_decoding_looks_ahead_only_a_bounded_window():
    pulled, finished = [0], [0]
    peak = [0]
    lock = threading.Lock()

    def source():
        for i in range(200):
            with lock:
                pulled[0] += 1
                peak[0] = max(peak[0], pulled[0] - finished[0])
            yield i

    def decode(x):
        time.sleep(0.001)
        return x

    def model(x):
        time.sleep(0.002)
        with lock:
            finished[0] += 1
        return x

    pipe = Pipeline("x").map("x", "clip", decode, workers=2).map("clip", "y", model).output("y")
    result = pipe.run(source(), progress=False)
    assert result.column("y") == list(range(200))
    assert peak[0] <= 6  # never more than the look-ahead window in flight, however long the input


def test_unknown_input_columns_are_reported():
    pipe = Pipeline(["a", "b"]).map(["a", "b"], "c", lambda a, b: a + b).output("c")
    assert pipe.run([(1, 2), {"a": 3, "b": 4}], progress=False).column("c") == [3, 7]
    with pytest.raises(PipelineError, match="missing column"):
        pipe.run([{"a": 1}], progress=False)


JOB_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from vtzoo.pipelines import Pipeline
    log_path, store, out = sys.argv[1], sys.argv[2], sys.argv[3]

    def work(x):
        with open(log_path, "a") as log:
            log.write(f"{x}\\n")
        time.sleep(0.05)
        return x * x

    pipe = Pipeline("x").map("x", "y", work, workers=2).output("x", "y")
    result = pipe.run(list(range(30)), job_store=store, progress=False)
    with open(out, "w") as fh:
        json.dump({"rows": result.rows, "resumed": result.resumed}, fh)
    """
)


def _done_keys(store: Path) -> set[str]:
    if not store.exists():
        return set()
    with sqlite3.connect(store) as db:
        try:
            return {row[0] for row in db.execute("SELECT key FROM items WHERE status = 'done'")}
        except sqlite3.OperationalError:  # the job has not created its table yet
            return set()


def test_a_killed_job_resumes_without_losing_or_repeating_work(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    store, out = tmp_path / "job.sqlite", tmp_path / "out.json"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    proc = subprocess.Popen([sys.executable, str(script), str(first_log), str(store), str(out)], env=env)
    deadline = time.time() + 120
    while len(_done_keys(store)) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {int(k.rsplit("|", 1)[1]) for k in _done_keys(store)}  # key: pipeline fingerprint|item
    assert 8 <= len(done_before) < 30, "the job must be killed mid-run"
    assert not out.exists()

    subprocess.run([sys.executable, str(script), str(second_log), str(store), str(out)], env=env, check=True, timeout=300)
    recomputed = {int(x) for x in second_log.read_text().split()}
    result = json.loads(out.read_text())
    assert recomputed.isdisjoint(done_before), "finished items were computed again"
    assert recomputed | done_before == set(range(30)), "an item was lost"
    assert result["resumed"] == len(done_before)
    assert result["rows"] == [{"x": i, "y": i * i} for i in range(30)]
