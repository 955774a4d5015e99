"""The streaming engine: rows flow through the steps lazily, in input order.

Each step is a generator stage over rows (a row = one input item's columns, or one piece of it
after a ``flat_map``). Steps with ``workers > 0`` run in a thread pool that works ahead of the
next stage through a bounded window of in-flight rows (decoding hides behind the model while
memory stays bounded); steps with ``batch_size > 1`` call their op on whole batches. A batch that
fails is retried row by row, so an error is pinned to its row. Each step's ``on_error`` decides:
``raise`` stops the run, ``skip`` reports the row and carries on. An error that is about the
run rather than the row (``fatal``: the database stopped answering) stops it under either policy,
after recording what was finished.

Before the first input is read, :meth:`Engine.prepare` builds every model and opens every index:
a bad weight, an unreachable database or an unwritable folder fails there, not after hours of
decoding. It also computes the pipeline's fingerprint, which keys the job store (see
:mod:`vtzoo.pipelines.jobstore`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from tqdm.auto import tqdm

from vtzoo.errors import VtzooError
from vtzoo.pipelines.fingerprint import pipeline_fingerprint
from vtzoo.pipelines.jobstore import JobStore, item_key
from vtzoo.pipelines.ops import OpContext, OperatorTaskOp, PipelineOp, resolve_op
from vtzoo.pipelines.spec import PipelineSpec, Step


class PipelineError(VtzooError, RuntimeError):
    """A step failed under ``on_error: raise``, or with a programming error; names the step and the input."""


# What a bad input raises: vtzoo's own errors (InputError, VideoDecodeError, ...), an unreadable
# file, a value an op refuses. ``on_error: skip`` reports these per row and goes on; anything else
# is a bug in an op and stops the run whatever the policy, instead of failing every row alike.
ROW_ERRORS = (VtzooError, OSError, ValueError)


class RunAborted(PipelineError):
    """The run stopped on an error no item can get past; what finished before is recorded."""


def is_fatal(error: BaseException) -> bool:
    return bool(getattr(error, "fatal", False))


def apply_batch(op: PipelineOp, step: Step, rows: list[tuple[Any, ...]]) -> list[Any]:
    """Results (or exceptions) of ``op`` on ``rows``: one call for all, and if that fails, one call
    per row, so that an error is pinned to its row."""
    if len(rows) > 1:
        try:
            results = op.call_batch(rows)
            if len(results) != len(rows):
                raise PipelineError(f"op {step.op_label} returned {len(results)} results for {len(rows)} rows")
            return list(results)
        except Exception as exc:
            if is_fatal(exc):
                return [exc] * len(rows)
            if not isinstance(exc, ROW_ERRORS):  # a bug: report it once, not as every row's fault
                return [exc] * len(rows)
    return [call_one(op, row) for row in rows]


def call_one(op: PipelineOp, values: tuple[Any, ...]) -> Any:
    try:
        return op.call(*values)
    except Exception as exc:  # handed to the step's error policy
        return exc


def step_outputs(step: Step, value: Any) -> dict[str, Any]:
    """A step's result as its output columns."""
    if len(step.outputs) == 1:
        return {step.outputs[0]: value}
    if not isinstance(value, (tuple, list)) or len(value) != len(step.outputs):
        raise PipelineError(f"step '{step.name}': op {step.op_label} returned {type(value).__name__}, "
                            f"expected {len(step.outputs)} values for columns {step.outputs}")
    return dict(zip(step.outputs, value))


@dataclass
class Failure:
    index: int  # position of the input in the run
    key: str  # the job-store key of the input (its position without a job store)
    step: str
    error: str
    source: str = ""  # what a person recognises the input by: its path, else position and value

    def __str__(self) -> str:
        return f"{self.source or f'input {self.index}'}: step '{self.step}': {self.error}"


def describe_input(index: int, values: dict[str, Any]) -> str:
    """The first path or string among an input's columns, else ``input <index> (<values>)``."""
    for value in values.values():
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    def short(value: Any) -> str:
        if isinstance(value, (int, float, bool)) or value is None:
            return repr(value)
        shape = getattr(value, "shape", None)
        return f"<{type(value).__name__}{' ' + str(tuple(shape)) if shape is not None else ''}>"

    return f"input {index} ({', '.join(short(v) for v in values.values())[:80]})"


@dataclass
class RunResult:
    """Output rows in input order (an input may give 0, 1 or many rows) and every failure."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    resumed: int = 0  # inputs taken from the job store instead of computed

    def column(self, name: str) -> list[Any]:
        return [row[name] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class _Row:
    index: int
    values: dict[str, Any]


class _Tracker:
    """Counts the live rows of each input; an input is finished when its count drops to 0."""

    def __init__(self, on_finish: Callable[[int, list[dict[str, Any]], list[Failure]], None]):
        self.live: dict[int, int] = {}
        self.rows: dict[int, list[dict[str, Any]]] = {}
        self.failures: dict[int, list[Failure]] = {}
        self.on_finish = on_finish

    def start(self, index: int) -> None:
        self.live[index], self.rows[index], self.failures[index] = 1, [], []

    def split(self, index: int, pieces: int) -> None:
        self.live[index] += pieces - 1
        self._maybe_finish(index)

    def done(self, index: int, row: dict[str, Any] | None = None, failure: Failure | None = None) -> None:
        if row is not None:
            self.rows[index].append(row)
        if failure is not None:
            self.failures[index].append(failure)
        self.live[index] -= 1
        self._maybe_finish(index)

    def _maybe_finish(self, index: int) -> None:
        if self.live[index] == 0:
            del self.live[index]
            self.on_finish(index, self.rows.pop(index), self.failures.pop(index))


class Engine:
    def __init__(self, spec: PipelineSpec, context: OpContext | None = None):
        self.spec = spec
        self.context = context or OpContext()
        self.context.steps = {step.name: step for step in spec.steps}
        self._ops: dict[str, PipelineOp] = {}
        self._keep_after = self._columns_needed_after()
        self._operator_fingerprints: dict[str, str] = {}
        self.fingerprint: str | None = None

    def _op(self, step: Step) -> PipelineOp:
        if step.name not in self._ops:  # built on first use: a spec that is only validated builds nothing
            self._ops[step.name] = resolve_op(step, self.context, self.params(step))
        return self._ops[step.name]

    def op(self, step: Step) -> PipelineOp:
        """The step's ready op (built on first use)."""
        return self._op(step)

    def keep_after(self, position: int) -> set[str]:
        """The columns some step after ``position`` (or the output) still reads."""
        return self._keep_after[position]

    def params(self, step: Step) -> dict[str, Any]:
        """The step's parameters. An index step also gets the operator, variant and fingerprint of
        the step that computes the embeddings it reads, so a spec names its model once and a
        collection of other weights is refused before any work."""
        producer = self._producer(step)
        if producer is None:
            return step.params
        operator = self._op(producer).operator
        return {"operator": operator.name, "variant": operator.variant or "", "fingerprint": operator.fingerprint,
                **step.params}

    def _producer(self, step: Step) -> Step | None:
        """For an index step: the last earlier operator step that writes the column it reads."""
        if not (isinstance(step.op, str) and step.op.startswith("index.")):
            return None
        position = self.spec.steps.index(step)
        for other in reversed(self.spec.steps[:position]):
            if isinstance(other.op, str) and other.op.partition(".")[0] not in ("video", "index", "value") \
                    and step.inputs[0] in other.outputs:
                return other
        return None

    def prepare(self) -> str:
        """Build every op (models first, then the indexes they feed) and return the pipeline's
        fingerprint. Runs before any input is read, so bad settings fail before any work."""
        if self.fingerprint is None:
            from vtzoo.pipelines.index import DEFAULT_DB

            for step in self.spec.steps:  # databases first: reaching one takes seconds, loading a model minutes
                if isinstance(step.op, str) and step.op.startswith("index."):
                    self.context.index(str(step.params.get("db", DEFAULT_DB)), create=step.op != "index.search")
            for step in self.spec.steps:
                if not (isinstance(step.op, str) and step.op.startswith("index.")):
                    op = self._op(step)
                    if isinstance(op, OperatorTaskOp):
                        self._operator_fingerprints[step.name] = op.operator.fingerprint
            for step in self.spec.steps:
                self._op(step)
            self.fingerprint = pipeline_fingerprint(self.spec, self._operator_fingerprints)
        return self.fingerprint

    def bound_spec(self) -> PipelineSpec:
        """The spec with the bound parameters written in (what a remote worker builds its ops from)."""
        self.prepare()
        steps = [dataclasses.replace(step, params=dict(self.params(step))) for step in self.spec.steps]
        return dataclasses.replace(self.spec, steps=steps)

    def item_key(self, values: dict[str, Any], job_store: JobStore) -> str:
        """The job-store key of one input: the pipeline's fingerprint and the input (files by content)."""
        return f"{self.prepare()}|{item_key([values[c] for c in self.spec.inputs], job_store.content_hash)}"

    def _columns_needed_after(self) -> list[set[str]]:
        """For each step, the columns some later step or the output still reads (others are freed)."""
        needed = set(self.spec.outputs)
        keep: list[set[str]] = []
        for step in reversed(self.spec.steps):
            keep.append(set(needed))
            needed |= set(step.inputs)
        return list(reversed(keep))

    # -- running ------------------------------------------------------------------------------
    def run(self, items: Iterable[Any], job_store: JobStore | None = None, progress: bool = True,
            total: int | None = None) -> RunResult:
        self.prepare()
        result = RunResult()
        by_index: dict[int, list[dict[str, Any]]] = {}
        keys: dict[int, str] = {}
        labels: dict[int, str] = {}  # how a failure names its input: the file, as the user wrote it

        def finish(index: int, rows: list[dict[str, Any]], failures: list[Failure]) -> None:
            by_index[index] = [{c: r[c] for c in self.spec.outputs} for r in rows]
            result.failures.extend(failures)
            if job_store is not None:
                record_outcome(job_store, keys[index], by_index[index], failures)
            bar.update(1)

        tracker = _Tracker(finish)
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        bar = tqdm(total=total, desc=self.spec.name or "pipeline", unit="item", disable=not progress)

        def sources() -> Iterator[_Row]:
            for index, item in enumerate(items):
                values = self.input_values(item, index)
                labels[index] = describe_input(index, values)
                keys[index] = self.item_key(values, job_store) if job_store else str(index)
                stored = job_store.get(keys[index]) if job_store is not None else None
                if stored is not None:
                    by_index[index] = stored
                    result.resumed += 1
                    bar.update(1)
                    continue
                tracker.start(index)
                yield _Row(index, values)

        stream: Iterator[_Row] = sources()
        for position, step in enumerate(self.spec.steps):
            stream = self._stage(position, step, stream, tracker, keys, labels)
        aborted = False
        try:
            for row in stream:
                tracker.done(row.index, row=row.values)
        except RunAborted as exc:
            aborted = True
            raise RunAborted(abort_message(str(exc), len(by_index), total, job_store is not None)) from exc.__cause__
        finally:
            bar.close()
            finish_ops(self._ops.values(), aborting=aborted)
        result.rows = [row for index in sorted(by_index) for row in by_index[index]]
        result.failures.sort(key=lambda f: f.index)
        return result

    def input_values(self, item: Any, index: int) -> dict[str, Any]:
        names = self.spec.inputs
        if isinstance(item, dict):
            missing = [n for n in names if n not in item]
            if missing:
                raise PipelineError(f"input {index}: missing column(s) {missing} (the pipeline takes {names})")
            return {n: item[n] for n in names}
        if len(names) == 1:
            return {names[0]: item}
        if isinstance(item, (tuple, list)) and len(item) == len(names):
            return dict(zip(names, item))
        raise PipelineError(f"input {index}: expected {len(names)} values for columns {names}, got {item!r}")

    # -- stages -------------------------------------------------------------------------------
    def _stage(self, position: int, step: Step, rows: Iterator[_Row], tracker: _Tracker, keys: dict[int, str],
               labels: dict[int, str]) -> Iterator[_Row]:
        keep = self._keep_after[position]
        next_batch = next((s.batch_size for s in self.spec.steps[position + 1 :] if s.batch_size > 1), 1)
        for row, outcome in self._apply(step, rows, next_batch):
            if isinstance(outcome, BaseException):
                failure = Failure(row.index, keys.get(row.index, str(row.index)), step.name,
                                  f"{type(outcome).__name__}: {outcome}", labels.get(row.index, ""))
                if is_fatal(outcome):
                    raise RunAborted(f"step '{step.name}': {outcome}") from outcome
                if step.on_error == "raise" or not isinstance(outcome, ROW_ERRORS):
                    # a bug (TypeError, AttributeError, ...) is not a bad row: it stops the run
                    raise PipelineError(str(failure)) from outcome
                tracker.done(row.index, failure=failure)
                continue
            yield from self._emit(step, row, outcome, keep, tracker)

    def _emit(self, step: Step, row: _Row, outcome: Any, keep: set[str], tracker: _Tracker) -> Iterator[_Row]:
        if step.kind == "filter":
            if outcome:
                yield _Row(row.index, {k: v for k, v in row.values.items() if k in keep})
            else:
                tracker.done(row.index)
            return
        pieces = list(outcome) if step.kind == "flat_map" else [outcome]
        if step.kind == "flat_map":
            if not pieces:
                tracker.done(row.index)
                return
            tracker.split(row.index, len(pieces))
        for piece in pieces:
            values = {k: v for k, v in row.values.items() if k in keep}
            values.update({k: v for k, v in step_outputs(step, piece).items() if k in keep})
            yield _Row(row.index, values)

    def _apply(self, step: Step, rows: Iterator[_Row], next_batch: int) -> Iterator[tuple[_Row, Any]]:
        """(row, result or exception) pairs, in row order."""
        if step.batch_size > 1:
            yield from self._apply_batched(step, rows)
        elif step.workers > 0:
            yield from self._apply_threaded(step, rows, max_in_flight=max(2 * next_batch, 2 * step.workers, 4))
        else:
            for row in rows:
                yield row, self._call_one(step, row)

    def _call_one(self, step: Step, row: _Row) -> Any:
        return call_one(self._op(step), tuple(row.values[c] for c in step.inputs))

    def _apply_threaded(self, step: Step, rows: Iterator[_Row], max_in_flight: int) -> Iterator[tuple[_Row, Any]]:
        self._op(step)  # build before the threads start: one model, not one per thread
        window: deque[tuple[_Row, Future]] = deque()
        with ThreadPoolExecutor(max_workers=step.workers, thread_name_prefix=f"vtzoo-{step.name}") as pool:
            for row in rows:
                window.append((row, pool.submit(self._call_one, step, row)))
                if len(window) >= max_in_flight:
                    done_row, future = window.popleft()
                    yield done_row, future.result()
            while window:
                done_row, future = window.popleft()
                yield done_row, future.result()

    def _apply_batched(self, step: Step, rows: Iterator[_Row]) -> Iterator[tuple[_Row, Any]]:
        op = self._op(step)
        while True:
            batch = list(itertools.islice(rows, step.batch_size))
            if not batch:
                return
            yield from zip(batch, apply_batch(op, step, [tuple(r.values[c] for c in step.inputs) for r in batch]))


def finish_ops(ops: Iterable[PipelineOp], aborting: bool) -> None:
    """Let every op seal its work (an index flushes). When the run is aborting, a failure here is
    the abort's echo (the database that stopped answering cannot flush either): the abort is what
    the user must see, so it is not replaced by this one."""
    for op in ops:
        try:
            op.finish()
        except Exception:
            if not aborting:
                raise


def abort_message(reason: str, finished: int, total: int | None, recorded: bool) -> str:
    """What an aborted run tells the user: why, how much was kept, and that a rerun does the rest."""
    kept = f"{finished} of {total}" if total is not None else f"{finished}"
    rest = f"the other {total - finished} were not" if total is not None else "the others were not"
    return (f"{reason}; {kept} input(s) finished{' and recorded' if recorded else ''}, {rest}: "
            "run the same job again to compute them")


def record_outcome(job_store: JobStore, key: str, rows: list[dict[str, Any]], failures: list[Failure]) -> None:
    """Failed inputs are recorded for the report (and computed again next time); finished ones with their rows."""
    if failures:
        job_store.put_failed(key, [{"step": f.step, "error": f.error} for f in failures])
    else:
        job_store.put_done(key, rows)
