"""The streaming engine: rows flow through the steps lazily, in input order.

Each step is a generator stage over rows (a row = one input item's columns, or one piece of it
after a ``flat_map``). Steps with ``workers > 0`` run in a thread pool that works ahead of the
next stage through a bounded window of in-flight rows (decoding hides behind the model while
memory stays bounded); steps with ``batch_size > 1`` call their op on whole batches. A batch that
fails is retried row by row, so an error is pinned to its row. Each step's ``on_error`` decides:
``raise`` stops the run, ``skip`` reports the row and carries on.
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from tqdm.auto import tqdm

from vtzoo.errors import VtzooError
from vtzoo.pipelines.jobstore import JobStore, item_key
from vtzoo.pipelines.ops import OpContext, PipelineOp, resolve_op
from vtzoo.pipelines.spec import PipelineSpec, Step


class PipelineError(VtzooError, RuntimeError):
    """A step failed under ``on_error: raise``, or with a programming error; names the step and the input."""


# What a bad input raises: vtzoo's own errors (InputError, VideoDecodeError, ...), an unreadable
# file, a value an op refuses. ``on_error: skip`` reports these per row and goes on; anything else
# is a bug in an op and stops the run whatever the policy, instead of failing every row alike.
ROW_ERRORS = (VtzooError, OSError, ValueError)


@dataclass
class Failure:
    index: int  # position of the input in the run
    key: str
    step: str
    error: str

    def __str__(self) -> str:
        return f"input {self.index} ({self.key}): step '{self.step}': {self.error}"


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

    def _op(self, step: Step) -> PipelineOp:
        if step.name not in self._ops:  # built on first use: a spec that is only validated builds nothing
            self._ops[step.name] = resolve_op(step, self.context)
        return self._ops[step.name]

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
        result = RunResult()
        by_index: dict[int, list[dict[str, Any]]] = {}
        keys: dict[int, str] = {}

        def finish(index: int, rows: list[dict[str, Any]], failures: list[Failure]) -> None:
            by_index[index] = [{c: r[c] for c in self.spec.outputs} for r in rows]
            result.failures.extend(failures)
            if job_store is not None:
                if failures:
                    job_store.put_failed(keys[index], [{"step": f.step, "error": f.error} for f in failures])
                else:
                    job_store.put_done(keys[index], by_index[index])
            bar.update(1)

        tracker = _Tracker(finish)
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        bar = tqdm(total=total, desc=self.spec.name or "pipeline", unit="item", disable=not progress)

        def sources() -> Iterator[_Row]:
            for index, item in enumerate(items):
                values = self._input_values(item, index)
                keys[index] = item_key([values[c] for c in self.spec.inputs]) if job_store else str(index)
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
            stream = self._stage(position, step, stream, tracker, keys)
        try:
            for row in stream:
                tracker.done(row.index, row=row.values)
        finally:
            bar.close()
            for op in self._ops.values():
                op.finish()
        result.rows = [row for index in sorted(by_index) for row in by_index[index]]
        result.failures.sort(key=lambda f: f.index)
        return result

    def _input_values(self, item: Any, index: int) -> dict[str, Any]:
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
    def _stage(self, position: int, step: Step, rows: Iterator[_Row], tracker: _Tracker, keys: dict[int, str]) -> Iterator[_Row]:
        keep = self._keep_after[position]
        next_batch = next((s.batch_size for s in self.spec.steps[position + 1 :] if s.batch_size > 1), 1)
        for row, outcome in self._apply(step, rows, next_batch):
            if isinstance(outcome, BaseException):
                failure = Failure(row.index, keys.get(row.index, str(row.index)), step.name, f"{type(outcome).__name__}: {outcome}")
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
            values.update({k: v for k, v in self._outputs(step, piece).items() if k in keep})
            yield _Row(row.index, values)

    @staticmethod
    def _outputs(step: Step, value: Any) -> dict[str, Any]:
        if len(step.outputs) == 1:
            return {step.outputs[0]: value}
        if not isinstance(value, (tuple, list)) or len(value) != len(step.outputs):
            raise PipelineError(f"step '{step.name}': op {step.op_label} returned {type(value).__name__}, "
                                f"expected {len(step.outputs)} values for columns {step.outputs}")
        return dict(zip(step.outputs, value))

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
        try:
            return self._op(step).call(*[row.values[c] for c in step.inputs])
        except Exception as exc:  # handed to the step's error policy (or raised, if a bug: _stage)
            return exc

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
            try:
                results = op.call_batch([tuple(r.values[c] for c in step.inputs) for r in batch])
                if len(results) != len(batch):
                    raise PipelineError(f"op {step.op_label} returned {len(results)} results for {len(batch)} rows")
            except ROW_ERRORS:  # a bad input: pin the error to its row(s), one by one
                results = [self._call_one(step, r) for r in batch]
            yield from zip(batch, results)
