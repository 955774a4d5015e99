"""The same pipeline spec on a Ray cluster, through Ray Data (``pip install 'vtzoo[ray]'``).

    pipe.run(paths, runner="ray", ray_address="ray://head:10001")   # or None: a local Ray
    vtzoo index ./videos --db http://milvus:19530 --runner ray --ray-address auto

How the steps map onto Ray Data (streaming execution, with backpressure between operators):

* consecutive light steps (decoding, windows, filters, Python callables) run as Ray tasks;
* each model step (``<operator>.<task>``) is an actor pool: the model is loaded once per actor,
  and the step's ``batch_size`` is the actor's batch; its ``resources`` (``num_cpus``,
  ``num_gpus``, ``concurrency``) are the actors' budget (default: 1 CPU each, 1 to #CPUs actors);
* ``index.upsert`` into a Milvus server runs as an actor pool of writers (one client each);
  into a local database (Milvus Lite, which one process may write, or the embedded store, which
  lives on the driver's disk) it runs on the driver, a single writer, as rows stream back.

Rows travel as pickled records (Ray itself pickles every task argument): the input's position,
its part (which piece after a ``flat_map``), its share of the input (an input is finished when
its shares add up to 1: pieces, filtered-out and failed rows all carry theirs), its column values
and its error, if any. A row that fails is reported by its input's file name, as the local runner
does, and the others go on. Ray retries the tasks of a worker that dies; the driver keeps the
first copy of each (input, part), so a retried row is never counted, written or returned twice.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable

from tqdm.auto import tqdm

from vtzoo.errors import VtzooError
from vtzoo.pipelines.engine import (
    Engine, Failure, RunAborted, RunResult, abort_message, apply_batch, describe_input, finish_ops, is_fatal,
    record_outcome, step_outputs,
)
from vtzoo.pipelines.index import DEFAULT_DB, is_server_uri
from vtzoo.pipelines.jobstore import JobStore
from vtzoo.pipelines.ops import OperatorTaskOp
from vtzoo.pipelines.spec import PipelineSpec, Step


class RayRunnerError(VtzooError, RuntimeError):
    pass


@dataclass
class Record:
    """One row in flight: which input it belongs to and how much of it."""

    index: int
    part: tuple[int, ...] = ()
    share: Fraction = Fraction(1)
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    step: str | None = None
    dropped: bool = False  # filtered out, or a flat_map gave no piece

    @property
    def live(self) -> bool:
        return self.error is None and not self.dropped


def run_steps(engine: Engine, steps: list[Step], records: list[Record]) -> list[Record]:
    """Apply ``steps`` (in order) to a batch of records; failed and dropped records pass through."""
    for step in steps:
        position = engine.spec.steps.index(step)
        keep = engine.keep_after(position)
        live = [r for r in records if r.live]
        outcomes = apply_batch(engine.op(step), step, [tuple(r.values[c] for c in step.inputs) for r in live])
        produced: list[Record] = [r for r in records if not r.live]
        for record, outcome in zip(live, outcomes):
            produced.extend(_emit(step, record, outcome, keep))
        records = produced
    return records


def _emit(step: Step, record: Record, outcome: Any, keep: set[str]) -> list[Record]:
    if isinstance(outcome, BaseException):
        if is_fatal(outcome) or step.on_error == "raise":
            raise outcome
        record.error, record.step, record.values = f"{type(outcome).__name__}: {outcome}", step.name, {}
        return [record]
    base = {k: v for k, v in record.values.items() if k in keep}
    if step.kind == "filter":
        if not outcome:
            return [Record(record.index, record.part, record.share, dropped=True)]
        return [Record(record.index, record.part, record.share, base)]
    pieces = list(outcome) if step.kind == "flat_map" else [outcome]
    if not pieces:
        return [Record(record.index, record.part, record.share, dropped=True)]
    share = record.share / len(pieces) if step.kind == "flat_map" else record.share
    out = []
    for k, piece in enumerate(pieces):
        values = {**base, **{c: v for c, v in step_outputs(step, piece).items() if c in keep}}
        part = record.part + (k,) if step.kind == "flat_map" else record.part
        out.append(Record(record.index, part, share, values))
    return out


# -- what runs on the workers -------------------------------------------------------------------
_ENGINES: dict[str, Engine] = {}  # per worker process: one engine (ops built once) per run


class StageTask:
    """A task stage: the steps named, on one batch; ops built once per worker process."""

    def __init__(self, spec: PipelineSpec, step_names: list[str], run_id: str):
        self.spec, self.step_names, self.run_id = spec, step_names, run_id

    def engine(self) -> Engine:
        if self.run_id not in _ENGINES:
            _ENGINES[self.run_id] = Engine(self.spec)
        return _ENGINES[self.run_id]

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        engine = self.engine()
        steps = [s for s in engine.spec.steps if s.name in self.step_names]
        records = run_steps(engine, steps, [pickle.loads(blob) for blob in batch["record"]])
        return {"record": np.array([pickle.dumps(r) for r in records], dtype=object)}


class StageActor(StageTask):
    """An actor stage (a model, a server writer): the same, its ops built once per actor."""

    def __init__(self, spec: PipelineSpec, step_names: list[str], run_id: str):
        super().__init__(spec, step_names, run_id)
        self._engine = Engine(spec)
        for step in self._engine.spec.steps:
            if step.name in step_names:
                self._engine.op(step)  # the model loads when the actor starts, not on its first batch

    def engine(self) -> Engine:
        return self._engine


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Stage:
    where: str  # "tasks", "actors" or "driver"
    steps: list[Step]


class RayRunner:
    def __init__(self, engine: Engine, address: str | None = None):
        self.engine, self.address = engine, address

    def plan(self) -> list[Stage]:
        """Consecutive light steps share a task stage; each model step and each server writer is an
        actor stage; a local index writer and everything after it run on the driver."""
        stages: list[Stage] = []
        for step in self.engine.spec.steps:
            if stages and stages[-1].where == "driver":
                stages[-1].steps.append(step)
            elif step.op == "index.upsert" and not is_server_uri(str(step.params.get("db", DEFAULT_DB))):
                stages.append(Stage("driver", [step]))
            elif step.op == "index.upsert" or isinstance(self.engine.op(step), OperatorTaskOp):
                stages.append(Stage("actors", [step]))
            elif stages and stages[-1].where == "tasks":
                stages[-1].steps.append(step)
            else:
                stages.append(Stage("tasks", [step]))
        return stages

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise RayRunnerError("the Ray runner needs Ray Data: pip install 'vtzoo[ray]'") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}})
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayRunnerError(f"cannot reach the Ray cluster at {self.address or 'a new local one'}: {exc}") from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        return ray

    def dataset(self, ray: Any, records: list[Record], spec: PipelineSpec):
        """The Ray Data plan of every stage but the driver's."""
        import uuid

        run_id = uuid.uuid4().hex
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = max(1, min(len(records), 4 * cpus, 200))
        ds = ray.data.from_items([{"record": pickle.dumps(r)} for r in records], override_num_blocks=blocks)
        for stage in self.plan():
            if stage.where == "driver":
                break
            names = [s.name for s in stage.steps]
            step = stage.steps[0]
            budget = {k: step.resources[k] for k in ("num_cpus", "num_gpus") if k in step.resources}
            batch = max(s.batch_size for s in stage.steps)
            if stage.where == "actors":
                concurrency = step.resources.get("concurrency") or (1, max(1, int(cpus // budget.get("num_cpus", 1))))
                ds = ds.map_batches(StageActor, fn_constructor_args=(spec, names, run_id), batch_size=batch,
                                    concurrency=int(concurrency) if not isinstance(concurrency, tuple) else concurrency,
                                    batch_format="numpy", **({"num_cpus": 1} | budget))
            else:
                extra = {"concurrency": int(step.resources["concurrency"])} if "concurrency" in step.resources else {}
                ds = ds.map_batches(StageTask(spec, names, run_id), batch_size=batch, batch_format="numpy", **budget, **extra)
        return ds

    def run(self, items: Iterable[Any], job_store: JobStore | None = None, progress: bool = True,
            total: int | None = None) -> RunResult:
        engine = self.engine
        spec = engine.bound_spec()  # workers build their ops from this (fingerprints filled in)
        ray = self._connect()
        result = RunResult()
        by_index: dict[int, list[tuple[tuple[int, ...], dict[str, Any]]]] = {}
        finished: dict[int, list[dict[str, Any]]] = {}
        keys, labels, todo = {}, {}, []
        for index, item in enumerate(items):
            values = engine.input_values(item, index)
            labels[index] = describe_input(index, values)
            keys[index] = engine.item_key(values, job_store) if job_store is not None else str(index)
            stored = job_store.get(keys[index]) if job_store is not None else None
            if stored is not None:
                finished[index] = stored
                result.resumed += 1
            else:
                todo.append(Record(index, values=values))
        bar = tqdm(total=total or len(keys), initial=result.resumed, desc=spec.name or "pipeline", unit="item",
                   disable=not progress)
        driver_steps = next((s.steps for s in self.plan() if s.where == "driver"), [])
        shares: dict[int, Fraction] = {}
        failures: dict[int, list[Failure]] = {}
        seen: set[tuple[int, tuple[int, ...]]] = set()

        def absorb(record: Record) -> None:
            shares[record.index] = shares.get(record.index, Fraction(0)) + record.share
            if record.error is not None:
                failures.setdefault(record.index, []).append(
                    Failure(record.index, keys[record.index], record.step or "", record.error, labels[record.index]))
            elif not record.dropped:
                by_index.setdefault(record.index, []).append((record.part, {c: record.values[c] for c in spec.outputs}))
            if shares[record.index] == 1:
                rows = [row for _, row in sorted(by_index.pop(record.index, []), key=lambda pr: pr[0])]
                finished[record.index] = rows
                result.failures.extend(failures.get(record.index, []))
                if job_store is not None:
                    record_outcome(job_store, keys[record.index], rows, failures.pop(record.index, []))
                bar.update(1)

        aborted = False
        try:
            if todo:
                for batch in self.dataset(ray, todo, spec).iter_batches(batch_size=None, batch_format="numpy"):
                    fresh = []
                    for blob in batch["record"]:
                        record = pickle.loads(blob)
                        if (record.index, record.part) not in seen:  # a retried task's copy is dropped
                            seen.add((record.index, record.part))
                            fresh.append(record)
                    for record in run_steps(engine, driver_steps, fresh) if driver_steps else fresh:
                        absorb(record)
        except Exception as exc:
            cause = _root_cause(exc)
            aborted = True
            raise RunAborted(abort_message(f"the Ray run stopped: {type(cause).__name__}: {cause}", len(finished),
                                           len(keys), job_store is not None)) from None
        finally:
            bar.close()
            finish_ops([engine.op(step) for step in driver_steps], aborting=aborted)
        result.rows = [row for index in sorted(finished) for row in finished[index]]
        result.failures.sort(key=lambda f: f.index)
        return result


def _root_cause(exc: BaseException) -> BaseException:
    """The user-level error inside Ray's wrappers (RayTaskError chains the original as its cause)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or not isinstance(inner, BaseException):
            break
        exc = inner
    return exc
