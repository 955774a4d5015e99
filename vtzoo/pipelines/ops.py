"""The ops a pipeline step can name.

* ``<operator>.<task>``: a registered operator's task (``clip4clip.embed_video``,
  ``movinet.classify``, ...) or a method it lists in ``pipeline_methods`` (``s3d.features``,
  ``movinet.stream_classify``); ``params`` the method takes (e.g. ``top_k``) go to the call, and
  the rest (``variant``, ``weights``, config overrides) build the operator, once per pipeline,
  shared by every step that names the same one.
* built-in ops registered with :func:`pipeline_op`: ``video.decode``, ``video.frames``,
  ``video.windows``, ``value.*`` filters, and ``index.upsert``, ``index.search``
  (:mod:`vtzoo.pipelines.index_ops`).

A spec can only name these (it never imports arbitrary code); the builder API also takes a
Python callable.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from vtzoo.operators.base import Embeddings, Operator
from vtzoo.pipelines.spec import SpecError

OPERATOR_TASKS = ("embed_video", "embed_text", "classify")
OPERATOR_PARAMS = ("variant", "weights", "device")


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


def pipeline_op(name: str) -> Callable[[Callable[..., PipelineOp]], Callable[..., PipelineOp]]:
    """Register a built-in op factory: ``factory(context, **params) -> PipelineOp``."""

    def decorator(factory: Callable[..., PipelineOp]) -> Callable[..., PipelineOp]:
        _BUILTIN[name] = factory
        return factory

    return decorator


def known_ops() -> list[str]:
    from vtzoo.registry.operators import list_operators

    tasks = [f"{name}.{task}" for name in list_operators() for task in _operator_methods(name)]
    return sorted(set(_BUILTIN) | set(tasks))


def _operator_methods(name: str) -> tuple[str, ...]:
    from vtzoo.registry.operators import get_operator_class

    cls = get_operator_class(name)
    return OPERATOR_TASKS + tuple(getattr(cls, "pipeline_methods", ()))


def check_op_name(name: str, where: str) -> None:
    """Fail early (before any model is built) on a name that is not a registered op."""
    if name in _BUILTIN:
        return
    operator, _, task = name.partition(".")
    from vtzoo.registry.operators import UnknownOperator, get_operator_class

    try:
        get_operator_class(operator)
    except UnknownOperator:
        operator = ""
    if operator and task in _operator_methods(operator):
        return
    close = difflib.get_close_matches(name, known_ops(), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise SpecError(where, "op", f"unknown op {name!r}.{hint}")


class OpContext:
    """What the ops of one pipeline share: built operators and open vector indexes."""

    def __init__(self) -> None:
        self._operators: dict[tuple, Operator] = {}
        self._indexes: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def operator(self, name: str, variant: str | None = None, weights: Any = None, device: str = "cpu", **config: Any) -> Operator:
        import vtzoo

        key = (name, variant, repr(weights), device, repr(sorted(config.items())))
        with self._lock:
            if key not in self._operators:
                self._operators[key] = vtzoo.create(name, variant, weights=weights, device=device, **config)
            return self._operators[key]

    def find_operator(self, name: str, variant: str | None = None, weights: Any = None) -> Operator:
        """An operator this pipeline already built (e.g. the one that embedded the query), else a new one."""
        with self._lock:
            for (built_name, built_variant, *_), op in self._operators.items():
                if built_name == name and (variant is None or built_variant in (None, variant)):
                    return op
        return self.operator(name, variant, weights=weights)

    def index(self, uri: str, create: bool = True) -> Any:
        from vtzoo.pipelines.index import VectorIndex

        with self._lock:
            if uri not in self._indexes:
                self._indexes[uri] = VectorIndex(uri, create=create)
            return self._indexes[uri]


def resolve_op(op: str | Callable[..., Any], params: dict[str, Any], context: OpContext) -> PipelineOp:
    if callable(op):
        return CallableOp(op, dict(params))
    if op in _BUILTIN:
        return _BUILTIN[op](context, **params)
    operator, _, task = op.partition(".")
    from vtzoo.registry.operators import get_operator_class

    # params the task method takes (e.g. classify's top_k) go to the call; the rest build the operator
    accepted = set(inspect.signature(getattr(get_operator_class(operator), task)).parameters) - {"self"}
    task_kwargs = {k: v for k, v in params.items() if k in accepted and k not in OPERATOR_PARAMS}
    settings = {k: params[k] for k in OPERATOR_PARAMS if k in params}
    config = {k: v for k, v in params.items() if k not in OPERATOR_PARAMS and k not in task_kwargs}
    return OperatorTaskOp(context.operator(operator, **settings, **config), task, **task_kwargs)


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
            return [result[i] for i in range(len(result))]
        return list(result)


# -- built-in ops -----------------------------------------------------------------------------
@pipeline_op("video.decode")
def _video_decode(context: OpContext, preprocess: Any = None, **sampling: Any) -> PipelineOp:
    """path (or bytes/array) [, start, end] -> VideoClip, decoded and preprocessed.

    ``preprocess`` is a card name (its preprocessing and frame sampling are used) or a mapping
    of Preprocess fields; ``sampling`` takes load_video's arguments (num_frames, fps, max_frames,
    backend, ...) and overrides the card's.
    """
    from vtzoo.video import Preprocess, load_video, sampling_from_card

    pre = None
    if isinstance(preprocess, str):
        from vtzoo.registry.cards import get_card

        card_prep = get_card(preprocess).preprocessing
        pre = Preprocess.from_card(card_prep)
        if not {"num_frames", "fps", "indices"} & set(sampling):
            sampling = {**sampling_from_card(card_prep), **sampling}
    elif isinstance(preprocess, dict):
        pre = Preprocess.from_card(preprocess)

    def decode(source: Any, start: float | None = None, end: float | None = None) -> Any:
        window = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        return load_video(source, preprocess=pre, **sampling, **window)

    return CallableOp(decode, {})


@pipeline_op("video.frames")
def _video_frames(context: OpContext) -> PipelineOp:
    """path -> a lazy iterator of its frames (RGB numpy arrays), decoded one at a time: what a
    streaming model consumes in constant memory however long the video."""
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
    with container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


@pipeline_op("video.windows")
def _video_windows(context: OpContext, window: float = 4.0, stride: float | None = None, min_length: float = 0.0) -> PipelineOp:
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
def _not_none(context: OpContext) -> PipelineOp:
    return CallableOp(lambda value: value is not None, {})


@pipeline_op("value.at_least")
def _at_least(context: OpContext, minimum: float = 0.0) -> PipelineOp:
    return CallableOp(lambda value: value is not None and float(value) >= minimum, {})


from vtzoo.pipelines import index_ops  # noqa: E402,F401  (registers index.upsert, index.search)
