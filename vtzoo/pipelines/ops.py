"""The ops a pipeline step can name.

* ``<operator>.<task>``: a registered operator's task (``clip4clip.embed_video``,
  ``movinet.classify``, ...) or a method it lists in ``pipeline_methods`` (``s3d.features``,
  ``movinet.stream_classify``); ``params`` the method takes (e.g. ``top_k``) go to the call, and
  the rest (``variant``, ``weights``, config overrides) build the operator, once per pipeline,
  shared by every step that names the same one.
* built-in ops registered with :func:`pipeline_op`: ``video.decode``, ``video.frames``,
  ``video.windows``, ``value.*`` filters, and ``index.upsert``, ``index.search``
  (:mod:`vtzoo.pipelines.index_ops`).

Every step's params are checked when the spec is loaded (:func:`check_step`), naming the step and
the field with the nearest valid one, before any model is built or video decoded.

A spec can only name these (it never imports arbitrary code); the builder API also takes a
Python callable.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from vtzoo.operators.base import Embeddings, Operator
from vtzoo.errors import did_you_mean
from vtzoo.pipelines.spec import SpecError, Step

OPERATOR_TASKS = ("embed_video", "embed_text", "classify")
# params of an operator step that say which operator to build (the rest: options, config, task kwargs)
OPERATOR_PARAMS = ("variant", "weights", "device", "precision", "batch_size", "seed")


class PipelineOp:
    """A ready op: ``call(*values)`` for one row, ``call_batch(rows)`` for several."""

    batched = False

    def call(self, *values: Any) -> Any:
        raise NotImplementedError

    def call_batch(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [self.call(*row) for row in rows]

    def finish(self) -> None:
        """Called after every run (e.g. to seal what an index op wrote)."""


@dataclass
class CallableOp(PipelineOp):
    fn: Callable[..., Any]
    params: dict[str, Any]
    on_finish: Callable[[], None] | None = None

    def call(self, *values: Any) -> Any:
        return self.fn(*values, **self.params)

    def finish(self) -> None:
        if self.on_finish is not None:
            self.on_finish()


_BUILTIN: dict[str, Callable[..., PipelineOp]] = {}
# modules whose ops register themselves with @pipeline_op when imported (imported on first use,
# like the operator families: this module imports none of them)
BUILTIN_OP_MODULES = ("vtzoo.pipelines.index_ops",)
_builtin_loaded = False


def builtin_ops() -> dict[str, Callable[..., PipelineOp]]:
    """Every registered built-in op factory, by name."""
    global _builtin_loaded
    if not _builtin_loaded:
        import importlib

        _builtin_loaded = True
        for module in BUILTIN_OP_MODULES:
            importlib.import_module(module)
    return _BUILTIN


def pipeline_op(name: str) -> Callable[[Callable[..., PipelineOp]], Callable[..., PipelineOp]]:
    """Register a built-in op factory: ``factory(context, step, **params) -> PipelineOp``
    (``step`` is the :class:`Step` being built, for ops that look at their neighbours)."""

    def decorator(factory: Callable[..., PipelineOp]) -> Callable[..., PipelineOp]:
        _BUILTIN[name] = factory
        return factory

    return decorator


def known_ops() -> list[str]:
    from vtzoo.registry.operators import list_operators

    tasks = [f"{name}.{task}" for name in list_operators() for task in _operator_methods(name)]
    return sorted(set(builtin_ops()) | set(tasks))


def _operator_methods(name: str) -> tuple[str, ...]:
    from vtzoo.registry.operators import get_operator_class

    cls = get_operator_class(name)
    return OPERATOR_TASKS + tuple(getattr(cls, "pipeline_methods", ()))


def check_op_name(name: str, where: str) -> None:
    """Fail early (before any model is built) on a name that is not a registered op."""
    if name in builtin_ops():
        return
    operator, _, task = name.partition(".")
    from vtzoo.registry.operators import UnknownOperator, get_operator_class

    try:
        get_operator_class(operator)
    except UnknownOperator:
        operator = ""
    if operator and task in _operator_methods(operator):
        return
    raise SpecError(where, "op", f"unknown op {name!r}.{did_you_mean(name, known_ops())}")


def accepted_params(name: str) -> tuple[str, ...] | None:
    """The params a step running op ``name`` may set (None: any, for a Python callable)."""
    if name in builtin_ops():
        return _builtin_params(builtin_ops()[name])
    from vtzoo.registry.operators import get_operator_class

    operator, _, task = name.partition(".")
    cls = get_operator_class(operator)
    # the method's first argument is the row's value, not a param
    method = [n for n in inspect.signature(getattr(cls, task)).parameters if n != "self"][1:]
    return tuple(dict.fromkeys(OPERATOR_PARAMS + cls.option_fields() + cls.config_fields() + tuple(method)))


def _builtin_params(factory: Callable[..., PipelineOp]) -> tuple[str, ...]:
    params = inspect.signature(factory).parameters
    names = tuple(n for n, p in params.items() if n not in ("context", "step") and p.kind is not p.VAR_KEYWORD)
    return names + tuple(getattr(factory, "extra_params", ()))


def check_step(op: str, params: dict[str, Any], where: str) -> None:
    """The op exists and every param is one it takes; else a SpecError naming step and field."""
    check_op_name(op, where)
    accepted = accepted_params(op)
    for key in params:
        if key not in accepted:
            raise SpecError(where, f"params.{key}", f"{op} takes no parameter {key!r}.{did_you_mean(key, accepted, cutoff=0.6)} "
                                                    f"It takes: {', '.join(accepted)}")


class OpContext:
    """What the ops of one pipeline share: built operators and open vector indexes."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}  # the spec's steps by name, set by the engine
        self._operators: dict[tuple, Operator] = {}
        self._indexes: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def operator(self, name: str, variant: str | None = None, **arguments: Any) -> Operator:
        """The operator ``vtzoo.create(name, variant, **arguments)``, built once per pipeline."""
        import vtzoo

        key = (name, variant, repr(sorted(arguments.items())))
        with self._lock:
            if key not in self._operators:
                self._operators[key] = vtzoo.create(name, variant, **arguments)
            return self._operators[key]

    def step_operator(self, step: Step) -> Operator:
        """The operator an operator step (``<operator>.<task>``) runs, built from its params."""
        operator, _, task = str(step.op).partition(".")
        _, arguments = split_step_params(step.op, step.params)
        return self.operator(operator, **arguments)

    def built_operator(self, fingerprint: str) -> Operator | None:
        """The operator of this pipeline whose fingerprint is ``fingerprint`` (None if none is)."""
        with self._lock:
            return next((op for op in self._operators.values() if op.fingerprint == fingerprint), None)

    def index(self, uri: str, create: bool = True) -> Any:
        from vtzoo.pipelines.index import VectorIndex

        with self._lock:
            if uri not in self._indexes:
                self._indexes[uri] = VectorIndex(uri, create=create)
            return self._indexes[uri]


def split_step_params(op: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An operator step's params as (task kwargs, ``vtzoo.create`` arguments)."""
    from vtzoo.registry.operators import get_operator_class

    operator, _, task = op.partition(".")
    accepted = set(inspect.signature(getattr(get_operator_class(operator), task)).parameters) - {"self"}
    task_kwargs = {k: v for k, v in params.items() if k in accepted and k not in OPERATOR_PARAMS}
    return task_kwargs, {k: v for k, v in params.items() if k not in task_kwargs}


def resolve_op(step: Step, context: OpContext, params: dict[str, Any] | None = None) -> PipelineOp:
    """The ready op of ``step``; ``params`` (default: the step's) may hold what the engine bound."""
    params = step.params if params is None else params
    if callable(step.op):
        return CallableOp(step.op, dict(params))
    if step.op in builtin_ops():
        return builtin_ops()[step.op](context, step, **params)
    task_kwargs, _ = split_step_params(step.op, params)
    return OperatorTaskOp(context.step_operator(step), step.op.partition(".")[2], **task_kwargs)


class OperatorTaskOp(PipelineOp):
    """A registered operator's method, called on a whole batch of rows at once. A generator
    method (a stream over one video, e.g. ``movinet.stream_classify``) is called per row and its
    items become the rows of a ``flat_map``."""

    def __init__(self, operator: Operator, task: str, **task_kwargs: Any):
        self.operator, self.task, self.task_kwargs = operator, task, task_kwargs
        self.method = getattr(operator, task)
        self.batched = not inspect.isgeneratorfunction(self.method)

    def call(self, *values: Any) -> Any:
        if not self.batched:
            # consumed here, so that an error mid-stream is this row's error (the rows it yields
            # are small: labels per window; the frames stream through)
            return list(self.method(*values, **self.task_kwargs))
        return self.call_batch([values])[0]

    def call_batch(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        if not self.batched:
            return [self.call(*row) for row in rows]
        result = self.method([row[0] for row in rows], **self.task_kwargs)
        if isinstance(result, Embeddings):
            # what made them travels with them: the index keys its collection and rows by it
            result.extras.update(operator=self.operator.name, variant=self.operator.variant,
                                 fingerprint=self.operator.fingerprint)
            return [result[i] for i in range(len(result))]
        return list(result)


# -- built-in ops -----------------------------------------------------------------------------
@pipeline_op("video.decode")
def _video_decode(context: OpContext, step: Step, preprocess: Any = None, backend: str | None = None,
                  decode_at_size: bool = False, **sampling: Any) -> PipelineOp:
    """path (or bytes/array) [, start, end] -> VideoClip, decoded and preprocessed for an operator.

    By default for the operator step that reads this step's output (``for: <step>`` names another),
    with that operator's own input spec (:attr:`Operator.video_input`): the spec names its model
    once. ``sampling`` (``num_frames``, ``fps``, ``max_frames``, ``sampling``, ``pad``) overrides
    the operator's rule. Without an operator step, ``preprocess`` is a card name or a mapping of
    Preprocess fields. ``decode_at_size: true`` lets the decoder scale frames to the model's size
    (faster on large videos; pixels differ slightly from the original resampling, see docs/video.md).
    """
    from vtzoo.video import VideoInputSpec

    target = sampling.pop("for", None)
    consumer = context.steps.get(target) if target else _consumer_of(step, context)
    if target and consumer is None:
        raise SpecError(f"step '{step.name}'", "params.for", f"names no step of this pipeline: {target!r}")
    if consumer is not None and preprocess is None:
        spec = context.step_operator(consumer).video_input
        if spec is None:
            raise SpecError(f"step '{step.name}'", "params.for", f"step '{consumer.name}' ({consumer.op}) reads features, not video")
    elif isinstance(preprocess, str):
        from vtzoo.registry.cards import get_card

        spec = VideoInputSpec.from_card(get_card(preprocess).preprocessing)
    else:
        spec = VideoInputSpec.from_card(dict(preprocess or {"frames": sampling.get("num_frames") or 8}))
    spec = spec.replace(decode_at_size=bool(decode_at_size), **sampling)

    def decode(source: Any, start: float | None = None, end: float | None = None) -> Any:
        return spec.load(source, start=start, end=end, backend=backend)

    return CallableOp(decode, {})


_video_decode.extra_params = ("for", "num_frames", "fps", "max_frames", "sampling", "pad")


def _consumer_of(step: Step, context: OpContext) -> Step | None:
    """The first later operator step that reads one of ``step``'s outputs."""
    names = list(context.steps)
    later = names[names.index(step.name) + 1:] if step.name in names else []
    for name in later:
        other = context.steps[name]
        if isinstance(other.op, str) and other.op not in builtin_ops() and set(other.inputs) & set(step.outputs):
            return other
    return None


@pipeline_op("video.frames")
def _video_frames(context: OpContext, step: Step) -> PipelineOp:
    """path -> a lazy iterator of its upright frames (RGB numpy arrays), decoded one at a time:
    what a streaming model consumes in constant memory however long the video."""
    import av

    def frames(path: Any) -> Iterator[Any]:
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            from vtzoo.video import VideoDecodeError

            raise VideoDecodeError(str(path), f"cannot be opened: {exc}") from None
        return _decoded(container)

    return CallableOp(frames, {})


def _decoded(container: Any) -> Iterator[Any]:
    from vtzoo.video.orientation import upright_rgb

    with container:
        for frame in container.decode(video=0):
            yield upright_rgb(frame)


@pipeline_op("video.frame_times")
def _video_frame_times(context: OpContext, step: Step) -> PipelineOp:
    """(path, start_frame, end_frame) -> (start, end) in seconds: ``[start, end)`` frame numbers
    (what a streaming model reports) as the times every other step uses. ``end`` past the last
    frame is the video's duration."""
    from functools import lru_cache

    from vtzoo.video import frame_times

    times = lru_cache(maxsize=8)(frame_times)  # one index per video, not one per window

    def seconds(path: Any, start_frame: int, end_frame: int) -> tuple[float, float]:
        timestamps, duration = times(path)

        def at(frame: int) -> float:
            return round(float(timestamps[frame]) if frame < len(timestamps) else duration, 6)

        return at(int(start_frame)), at(int(end_frame))

    return CallableOp(seconds, {})


@pipeline_op("video.windows")
def _video_windows(context: OpContext, step: Step, window: float = 4.0, stride: float | None = None, min_length: float = 0.0) -> PipelineOp:
    """flat_map: path -> (start, end) windows covering the video, ``window`` seconds each."""
    from vtzoo.video import probe_video

    step = stride or window

    def windows(source: Any) -> Iterable[tuple[float, float]]:
        duration = float(probe_video(source).duration)
        start, out = 0.0, []
        while start < duration or not out:
            end = min(start + window, duration)
            if end - start >= min_length or not out:
                out.append((round(start, 3), round(end, 3)))
            if end >= duration:
                break
            start += step
        return out

    return CallableOp(windows, {})


@pipeline_op("value.not_none")
def _not_none(context: OpContext, step: Step) -> PipelineOp:
    return CallableOp(lambda value: value is not None, {})


@pipeline_op("value.at_least")
def _at_least(context: OpContext, step: Step, minimum: float = 0.0) -> PipelineOp:
    return CallableOp(lambda value: value is not None and float(value) >= minimum, {})

