"""The builder API: a pipeline is a list of steps over named columns.

    pipe = (Pipeline(inputs=["path"])
            .map("path", "clip", "video.decode", num_frames=12, workers=2)
            .map("clip", "vec", "clip4clip.embed_video", batch_size=8, on_error="skip")
            .output("path", "vec"))
    pipe("a.mp4")                     # one item -> its output row
    pipe.run(paths)                   # many items; resumable (a job store beside the index)
    pipe.run(paths, runner="ray")     # the same steps on a Ray cluster

The same pipeline as YAML: ``pipe.to_yaml()`` / ``Pipeline.from_yaml(text_or_path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from vtzoo.pipelines.engine import Engine, PipelineError, RunResult
from vtzoo.pipelines.jobstore import JobStore, default_job_store
from vtzoo.pipelines.ops import OpContext, check_step
from vtzoo.pipelines.spec import PipelineSpec, SpecError, Step, check_graph

Columns = str | list[str] | tuple[str, ...]
_STEP_OPTIONS = ("batch_size", "workers", "on_error", "name", "resources")
RUNNERS = ("local", "ray")


def _as_list(columns: Columns) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


class Pipeline:
    def __init__(self, inputs: Columns, name: str = "", description: str = ""):
        self._spec = PipelineSpec(inputs=_as_list(inputs), steps=[], outputs=[], name=name, description=description)
        self._context = OpContext()
        self._engine: Engine | None = None

    # -- building -----------------------------------------------------------------------------
    def _add(self, kind: str, inputs: Columns, outputs: Columns | None, op: str | Callable[..., Any], params: dict[str, Any]) -> "Pipeline":
        options = {k: params.pop(k) for k in _STEP_OPTIONS if k in params}
        index = len(self._spec.steps)
        step = Step(kind=kind, op=op, inputs=_as_list(inputs), outputs=_as_list(outputs) if outputs else [],
                    params=params, name=options.pop("name", f"{kind}_{index}"), **options)
        where = f"step {index} ('{step.name}')"
        step.check(where)
        if isinstance(op, str):
            check_step(op, params, where)
        elif not callable(op):
            raise SpecError(where, "op", f"must be a registered op name or a callable, got {op!r}")
        check_graph(self._spec.inputs, [*self._spec.steps, step], [])
        self._spec.steps.append(step)
        self._engine = None
        return self

    def map(self, inputs: Columns, outputs: Columns, op: str | Callable[..., Any], **params: Any) -> "Pipeline":
        """One row in, one row out: ``outputs = op(*inputs)``."""
        return self._add("map", inputs, outputs, op, params)

    def flat_map(self, inputs: Columns, outputs: Columns, op: str | Callable[..., Any], **params: Any) -> "Pipeline":
        """One row in, any number out (e.g. a long video into clip windows)."""
        return self._add("flat_map", inputs, outputs, op, params)

    def filter(self, inputs: Columns, op: str | Callable[..., Any], **params: Any) -> "Pipeline":
        """Keep the rows for which ``op(*inputs)`` is true."""
        return self._add("filter", inputs, None, op, params)

    def batch(self, size: int) -> "Pipeline":
        """Run the previous step on batches of ``size`` rows (one model call per batch)."""
        if not self._spec.steps:
            raise SpecError("batch", "batch_size", "batch() follows the step it batches")
        step = self._spec.steps[-1]
        step.batch_size = size
        step.check(f"step {len(self._spec.steps) - 1} ('{step.name}')")
        return self

    def output(self, *columns: str) -> "Pipeline":
        check_graph(self._spec.inputs, self._spec.steps, list(columns))
        self._spec.outputs = list(columns)
        self._engine = None
        return self

    # -- declarative form ---------------------------------------------------------------------
    @property
    def spec(self) -> PipelineSpec:
        return self._spec

    def to_yaml(self) -> str:
        return self._spec.to_yaml()

    @classmethod
    def from_spec(cls, spec: PipelineSpec, share_with: "Pipeline | None" = None) -> "Pipeline":
        """A pipeline for ``spec``; ``share_with`` lets it reuse another pipeline's built operators
        and open indexes (an index pipeline and its query pipeline load one model, not two)."""
        for i, step in enumerate(spec.steps):
            if isinstance(step.op, str):
                check_step(step.op, step.params, f"step {i} ('{step.name}')")
        pipe = cls(spec.inputs, name=spec.name, description=spec.description)
        pipe._spec = spec
        if share_with is not None:
            pipe._context = share_with._context
        return pipe

    @classmethod
    def from_yaml(cls, text_or_path: str | Path, share_with: "Pipeline | None" = None) -> "Pipeline":
        """Load a spec (YAML text or a file path), validated; it can only name registered ops."""
        return cls.from_spec(PipelineSpec.from_yaml(text_or_path), share_with)

    # -- running ------------------------------------------------------------------------------
    def _ready_engine(self) -> Engine:
        if not self._spec.outputs:
            raise SpecError("outputs", "outputs", "call .output(...) to name the columns the pipeline returns")
        if self._engine is None:
            self._engine = Engine(self._spec, self._context)
        return self._engine

    def __call__(self, *values: Any) -> dict[str, Any] | list[dict[str, Any]] | None:
        """Run one item; returns its output row (a list of rows after a flat_map, None if filtered)."""
        item = values[0] if len(values) == 1 else tuple(values)
        result = self._ready_engine().run([item], progress=False)
        if result.failures:
            raise PipelineError(str(result.failures[0]))
        if any(s.kind == "flat_map" for s in self._spec.steps):
            return result.rows
        return result.rows[0] if result.rows else None

    def run(self, items: Iterable[Any], job_store: str | Path | JobStore | None = "auto", progress: bool = True,
            total: int | None = None, runner: str = "local", ray_address: str | None = None) -> RunResult:
        """Run many items (lazily consumed). Resumable: finished inputs are recorded in ``job_store``
        and not recomputed; ``"auto"`` (the default) keeps it beside the index the pipeline writes
        (none for a pipeline that writes no index), ``None`` turns it off.

        ``runner="ray"`` runs the same steps on a Ray cluster (``ray_address``, default: a local one);
        see :mod:`vtzoo.pipelines.ray_runner`."""
        if runner not in RUNNERS:
            raise SpecError("run", "runner", f"must be one of {', '.join(RUNNERS)}, got {runner!r}")
        engine = self._ready_engine()
        engine.prepare()  # models built, indexes opened: bad settings fail before the job store is touched
        store = JobStore(job_store) if isinstance(job_store, (str, Path)) and job_store != "auto" else job_store
        if store == "auto":
            store = self._default_job_store()
        try:
            if runner == "ray":
                from vtzoo.pipelines.ray_runner import RayRunner

                return RayRunner(engine, address=ray_address).run(items, job_store=store, progress=progress, total=total)
            return engine.run(items, job_store=store, progress=progress, total=total)
        finally:
            if store is not None and store is not job_store:
                store.close()

    def _default_job_store(self) -> JobStore | None:
        from vtzoo.pipelines.index import DEFAULT_DB

        for step in self._spec.steps:
            if step.op == "index.upsert":
                return JobStore(default_job_store(str(step.params.get("db", DEFAULT_DB))))
        return None

    def __repr__(self) -> str:
        steps = " -> ".join(f"{s.kind}({s.op_label})" for s in self._spec.steps)
        return f"<Pipeline {self._spec.name or ''} {self._spec.inputs} -> {steps} -> {self._spec.outputs}>"
