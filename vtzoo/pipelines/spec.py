"""The declarative form of a pipeline: steps over named columns, validated, YAML round-trip.

A spec is a list of steps. Each step reads input columns and writes output columns::

    name: text-video-index
    inputs: [path]
    steps:
      - kind: map
        name: decode
        op: video.decode
        input: path
        output: clip
        workers: 2
      - kind: map
        name: embed
        op: clip4clip.embed_video
        input: clip
        output: vec
        params: {variant: vit-b32-zeroshot}
        batch_size: 8
        on_error: skip
    outputs: [path, vec]

The decode step needs no model name: it decodes for the operator step that reads its output
(``for: <step>`` names another one), with that operator's own sampling and preprocessing; an
index step takes its collection from the embeddings it receives. So a spec names its model once.

Steps run in the order written; a step may only read columns that exist before it (a pipeline
input or the output of an earlier step), which makes every valid spec an acyclic graph.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from vtzoo.errors import VtzooError, did_you_mean

STEP_KINDS = ("map", "flat_map", "filter")
STEP_SETTINGS = ("op", "batch_size", "workers", "on_error")  # step fields an override may set beside params
ERROR_POLICIES = ("raise", "skip")
_STEP_FIELDS = {"kind", "name", "op", "input", "output", "params", "batch_size", "workers", "on_error", "resources"}
RESOURCE_FIELDS = ("num_cpus", "num_gpus", "concurrency")  # what a distributed runner gives the step
_TOP_FIELDS = {"name", "description", "inputs", "steps", "outputs"}


class SpecError(VtzooError, ValueError):
    """A pipeline spec that cannot run; the message names the step and the field."""

    def __init__(self, where: str, field_name: str, problem: str):
        self.where, self.field = where, field_name
        super().__init__(f"pipeline spec: {where}: field '{field_name}': {problem}")


def _columns(value: Any, where: str, field_name: str, allow_empty: bool = False) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if names is None and allow_empty:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or (not names and not allow_empty):
        raise SpecError(where, field_name, f"must be a column name or a list of column names, got {value!r}")
    return list(names)


@dataclass
class Step:
    """One step: ``kind`` over ``op`` from ``inputs`` to ``outputs``."""

    kind: str
    op: str | Callable[..., Any]
    inputs: list[str]
    outputs: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    batch_size: int = 1
    workers: int = 0
    on_error: str = "raise"
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def op_label(self) -> str:
        return self.op if isinstance(self.op, str) else getattr(self.op, "__qualname__", repr(self.op))

    def to_dict(self) -> dict[str, Any]:
        if not isinstance(self.op, str):
            raise SpecError(f"step '{self.name}'", "op", "is a Python callable; only registered ops can be written as a spec")
        data: dict[str, Any] = {"kind": self.kind, "name": self.name, "op": self.op}
        data["input"] = self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)
        if self.kind != "filter":
            data["output"] = self.outputs[0] if len(self.outputs) == 1 else list(self.outputs)
        if self.params:
            data["params"] = copy.deepcopy(self.params)
        if self.batch_size != 1:
            data["batch_size"] = self.batch_size
        if self.workers:
            data["workers"] = self.workers
        if self.on_error != "raise":
            data["on_error"] = self.on_error
        if self.resources:
            data["resources"] = dict(self.resources)
        return data

    @classmethod
    def from_dict(cls, data: Any, index: int) -> "Step":
        where = f"step {index}"
        if not isinstance(data, dict):
            raise SpecError(where, "<step>", f"must be a mapping, got {type(data).__name__}")
        if isinstance(data.get("name"), str) and data["name"]:
            where = f"step {index} ('{data['name']}')"
        unknown = sorted(set(data) - _STEP_FIELDS)
        if unknown:
            raise SpecError(where, unknown[0], f"unknown field (known: {', '.join(sorted(_STEP_FIELDS))})")
        kind = data.get("kind")
        if kind not in STEP_KINDS:
            raise SpecError(where, "kind", f"must be one of {', '.join(STEP_KINDS)}, got {kind!r}")
        op = data.get("op")
        if not isinstance(op, str) or not op:
            raise SpecError(where, "op", f"must be a registered op name (e.g. 'video.decode'), got {op!r}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise SpecError(where, "params", f"must be a mapping, got {type(params).__name__}")
        step = cls(
            kind=kind,
            op=op,
            inputs=_columns(data.get("input"), where, "input"),
            outputs=_columns(data.get("output"), where, "output", allow_empty=kind == "filter"),
            params=params,
            name=str(data.get("name") or f"{kind}_{index}"),
            batch_size=data.get("batch_size", 1),
            workers=data.get("workers", 0),
            on_error=data.get("on_error", "raise"),
            resources=data.get("resources") or {},
        )
        step.check(where)
        return step

    def check(self, where: str) -> None:
        for fname in ("batch_size", "workers"):
            value = getattr(self, fname)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if fname == "batch_size" else 0):
                raise SpecError(where, fname, f"must be an integer >= {1 if fname == 'batch_size' else 0}, got {value!r}")
        if not isinstance(self.resources, dict) or set(self.resources) - set(RESOURCE_FIELDS) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in self.resources.values()):
            raise SpecError(where, "resources", f"must map {', '.join(RESOURCE_FIELDS)} to numbers >= 0, got {self.resources!r}")
        if self.on_error not in ERROR_POLICIES:
            raise SpecError(where, "on_error", f"must be one of {', '.join(ERROR_POLICIES)}, got {self.on_error!r}")
        if self.kind == "filter" and self.outputs:
            raise SpecError(where, "output", "a filter writes no column")
        if self.kind != "filter" and not self.outputs:
            raise SpecError(where, "output", "is required")


def check_graph(inputs: list[str], steps: list[Step], outputs: list[str]) -> None:
    """Every column a step reads must exist before it; a read of a later step's column is a cycle."""
    available = set(inputs)
    produced_at: dict[str, int] = {}
    for i, step in enumerate(steps):
        for column in step.outputs:
            produced_at.setdefault(column, i)
    names: set[str] = set()
    for i, step in enumerate(steps):
        where = f"step {i} ('{step.name}')"
        if step.name in names:
            raise SpecError(where, "name", f"the name '{step.name}' is used by an earlier step")
        names.add(step.name)
        for column in step.inputs:
            if column in available:
                continue
            later = produced_at.get(column)
            if later is not None and later >= i:
                raise SpecError(where, "input", f"column '{column}' is written by step {later} ('{steps[later].name}'), "
                                                "which runs at or after this one: the graph has a cycle")
            raise SpecError(where, "input", f"column '{column}' does not exist (available: {', '.join(sorted(available))})")
        available.update(step.outputs)
    for column in outputs:
        if column not in available:
            raise SpecError("outputs", "outputs", f"column '{column}' is never written (available: {', '.join(sorted(available))})")


@dataclass
class PipelineSpec:
    inputs: list[str]
    steps: list[Step]
    outputs: list[str]
    name: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = self.name
        if self.description:
            data["description"] = self.description
        data["inputs"] = list(self.inputs)
        data["steps"] = [s.to_dict() for s in self.steps]
        data["outputs"] = list(self.outputs)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: Any) -> "PipelineSpec":
        if not isinstance(data, dict):
            raise SpecError("<root>", "<root>", "a pipeline spec must be a mapping")
        unknown = sorted(set(data) - _TOP_FIELDS)
        if unknown:
            raise SpecError("<root>", unknown[0], f"unknown field (known: {', '.join(sorted(_TOP_FIELDS))})")
        steps_data = data.get("steps")
        if not isinstance(steps_data, list) or not steps_data:
            raise SpecError("<root>", "steps", "must be a non-empty list of steps")
        spec = cls(
            inputs=_columns(data.get("inputs"), "<root>", "inputs"),
            steps=[Step.from_dict(s, i) for i, s in enumerate(steps_data)],
            outputs=_columns(data.get("outputs"), "<root>", "outputs"),
            name=str(data.get("name") or ""),
            description=str(data.get("description") or ""),
        )
        check_graph(spec.inputs, spec.steps, spec.outputs)
        return spec

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "PipelineSpec":
        text = str(text_or_path)
        source = "<string>"
        if isinstance(text_or_path, Path) or ("\n" not in text and text.endswith((".yaml", ".yml"))):
            path = Path(text_or_path)
            if not path.is_file():
                raise SpecError(str(path), "<file>", "does not exist")
            text, source = path.read_text(encoding="utf-8"), str(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(source, "<yaml>", f"is not valid YAML: {exc}") from None
        return cls.from_dict(data)

    # -- changing a spec ------------------------------------------------------------------------
    def step(self, name: str) -> Step:
        """The step called ``name``; an unknown name gets the nearest ones."""
        for step in self.steps:
            if step.name == name:
                return step
        names = [s.name for s in self.steps]
        raise SpecError(f"step '{name}'", "name", f"no such step.{did_you_mean(name, names)} Steps: {', '.join(names)}")

    def override(self, step: str, **params: Any) -> "PipelineSpec":
        """A copy with ``params`` set on ``step``; ``op``, ``batch_size``, ``workers`` and
        ``on_error`` set the step's own fields. The one way to change a spec (CLI ``--set step.key=value``,
        the demo, tests)."""
        spec = copy.deepcopy(self)
        target = spec.step(step)
        for key, value in params.items():
            if key in STEP_SETTINGS:
                setattr(target, key, value)
            else:
                target.params[key] = value
        target.check(f"step '{target.name}'")
        return spec

    def with_database(self, db: str) -> "PipelineSpec":
        """A copy whose index steps all read and write ``db`` (a Milvus Lite file or server URI)."""
        spec = copy.deepcopy(self)
        for step in spec.steps:
            if isinstance(step.op, str) and step.op.startswith("index."):
                step.params["db"] = db
        return spec

    def replace(self, **changes: Any) -> "PipelineSpec":
        return dataclasses.replace(copy.deepcopy(self), **changes)
