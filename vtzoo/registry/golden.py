"""``vtzoo verify-golden``: re-run a parity case of an original implementation and compare.

A case folder holds ``config.json`` (with a ``golden`` block naming the ``family``, the ``kind``
and where the ``weights`` come from), ``inputs.safetensors``, ``outputs.safetensors`` and
``original_state_dict.safetensors``, a ``weights_recipe`` in config.json that regenerates the
large tensors, or both (the recipe's tensors plus the file's, e.g. VGGish's convolutions from a
recipe and its PCA parameters from the file). Each family provides a runner
``run_case(case) -> dict[str, Tensor | Skipped]`` (or a :class:`GoldenRun`) that builds the model
from the case's config alone (never from the folder's name), converts the original state dict
and recomputes every output it can.

A case may hold several input sets: inputs ``<name>_<suffix>`` go with outputs
``<output>_<suffix>``. Outputs the runner does not give for the whole case are computed set by
set: the runner sees the inputs and outputs of one suffix under their plain names (with the
inputs that carry no suffix). Embeddings, logits, similarities and losses are never skipped: a
runner that skips one fails the case.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from vtzoo.errors import VtzooError

DEFAULT_TOLERANCE = 1e-4

class GoldenError(VtzooError, RuntimeError):
    """A case folder that cannot be run (missing file, unsupported family or variant)."""


@dataclass(frozen=True)
class Skipped:
    """An output the port cannot compute (an internal debug tensor of the original)."""

    reason: str


@dataclass
class GoldenRun:
    """What a runner returns when it needs per-output tolerances (e.g. stated in the case README)."""

    outputs: dict[str, Any]
    tolerances: dict[str, float] = field(default_factory=dict)


# What a parity check may never skip (DESIGN, "Golden verification").
NEVER_SKIPPED = re.compile(r"embed|logit|sim|loss", re.IGNORECASE)


@dataclass
class GoldenCase:
    path: Path
    config: dict[str, Any]
    input_set: dict[str, torch.Tensor] | None = None  # one suffix's inputs, under plain names
    output_set: dict[str, torch.Tensor] | None = None

    @classmethod
    def open(cls, path: str | Path) -> "GoldenCase":
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise GoldenError(f"{path}: no config.json (is this a golden case folder?)")
        config = json.loads(config_file.read_text())
        if not isinstance(config.get("golden"), dict) or "family" not in config["golden"]:
            raise GoldenError(f"{config_file}: field 'golden.family' is required")
        return cls(path=path, config=config)

    @property
    def family(self) -> str:
        return self.config["golden"]["family"]

    @property
    def kind(self) -> str:
        return self.config["golden"].get("kind", "model")

    @property
    def readme(self) -> str:
        file = self.path / "README.md"
        return file.read_text() if file.is_file() else ""

    def _load(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        file = self.path / name
        if not file.is_file():
            raise GoldenError(f"{self.path}: missing {name}")
        return load_file(str(file))

    def inputs(self) -> dict[str, torch.Tensor]:
        return dict(self.input_set) if self.input_set is not None else self._load("inputs.safetensors")

    def outputs(self) -> dict[str, torch.Tensor]:
        return dict(self.output_set) if self.output_set is not None else self._load("outputs.safetensors")

    def one_input_set(self, suffix: str, suffixes: set[str]) -> "GoldenCase":
        """The case as the runner sees one input set: ``<name>_<suffix>`` as ``<name>``, plus the
        inputs that belong to no set."""
        def strip(tensors: dict[str, torch.Tensor], keep_shared: bool) -> dict[str, torch.Tensor]:
            picked = {k[: -len(suffix) - 1]: v for k, v in tensors.items() if k.endswith(f"_{suffix}")}
            if keep_shared:
                shared = {k: v for k, v in tensors.items() if not any(k.endswith(f"_{s}") for s in suffixes)}
                picked = {**shared, **picked}
            return picked

        return dataclasses.replace(self, input_set=strip(self.inputs(), True), output_set=strip(self.outputs(), False))

    def original_state_dict(self, regenerate: Callable[[dict[str, Any]], dict[str, torch.Tensor]] | None = None) -> dict[str, torch.Tensor]:
        """The original's state dict, in its own key names and dtypes: the tensors config.json's
        ``weights_recipe`` regenerates, then those of the state dict file (which win a clash).

        A recipe with ``entries`` is regenerated here (:mod:`vtzoo.registry.recipes`); another
        kind needs the family's ``regenerate(recipe)``.
        """
        weights = self.config["golden"].get("weights", "original_state_dict.safetensors")
        file = self.path / ("original_state_dict.safetensors" if weights == "weights_recipe" else weights)
        recipe = self.config.get("weights_recipe")
        if recipe is None:
            return self._load(file.name)
        if "entries" in recipe:
            from vtzoo.registry.recipes import regenerate_weights

            state = regenerate_weights(recipe)
        elif regenerate is not None:
            state = regenerate(recipe)
        else:
            raise GoldenError(f"{self.path}: weights_recipe method {recipe.get('method')!r} needs the {self.family} runner")
        if file.is_file():
            state.update(self._load(file.name))
        return state

    @property
    def tolerance(self) -> float:
        return float(self.config.get("tolerance_abs", DEFAULT_TOLERANCE))


def golden_runners() -> dict[str, Callable[[GoldenCase], Any]]:
    """Every family's runners: each ``vtzoo/operators/**/golden.py`` declares ``GOLDEN_RUNNERS``
    (golden family name -> runner), so a new family registers its cases without a central table."""
    import pkgutil

    import vtzoo.operators as families

    runners: dict[str, Callable[[GoldenCase], Any]] = {}
    for module in pkgutil.walk_packages(families.__path__, prefix=f"{families.__name__}."):
        if module.name.rsplit(".", 1)[-1] == "golden":
            runners.update(getattr(importlib.import_module(module.name), "GOLDEN_RUNNERS", {}))
    return runners


def _runner(family: str) -> Callable[[GoldenCase], Any]:
    runners = golden_runners()
    if family not in runners:
        raise GoldenError(f"no golden runner for family {family!r} (known: {', '.join(sorted(runners))})")
    return runners[family]


def compare(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """Max absolute error; a shape mismatch is infinite error."""
    if tuple(expected.shape) != tuple(actual.shape):
        return math.inf
    if expected.numel() == 0:
        return 0.0
    diff = (expected.detach().double().cpu() - actual.detach().double().cpu()).abs()
    if torch.isnan(diff).any():
        both_nan = torch.isnan(expected.double().cpu()) & torch.isnan(actual.double().cpu())
        if not bool(both_nan.eq(torch.isnan(diff)).all()):
            return math.inf
        diff = torch.nan_to_num(diff, nan=0.0)
    return float(diff.max())


def _run(runner: Callable[[GoldenCase], Any], case: GoldenCase) -> GoldenRun:
    result = runner(case)
    return result if isinstance(result, GoldenRun) else GoldenRun(outputs=dict(result))


def _suffix_of(name: str, inputs: set[str]) -> str | None:
    """The shortest ``_``-separated tail of an output name that also ends an input name."""
    parts = name.split("_")
    for start in range(len(parts) - 1, 0, -1):
        suffix = "_".join(parts[start:])
        if any(key.endswith(f"_{suffix}") for key in inputs):
            return suffix
    return None


def _computed(run: GoldenRun, name: str) -> bool:
    return run.outputs.get(name) is not None and not isinstance(run.outputs[name], Skipped)


def run_all_outputs(case: GoldenCase, expected: set[str]) -> tuple[GoldenRun, str | None]:
    """Every output the family's runner computes: for the whole case, then set by set for the
    outputs of each input-set suffix. Returns the results and the whole-case error, if any."""
    runner = _runner(case.family)
    try:
        run, error = _run(runner, case), None
    except Exception as exc:  # the case may only make sense set by set
        run, error = GoldenRun(outputs={}), f"{type(exc).__name__}: {exc}"
    missing = {name for name in expected if not _computed(run, name)}
    inputs = set(case.inputs())
    suffixes = {s for s in (_suffix_of(name, inputs) for name in missing) if s}
    for suffix in sorted(suffixes):
        try:
            part = _run(runner, case.one_input_set(suffix, suffixes))
        except Exception as exc:
            error = f"input set {suffix!r}: {type(exc).__name__}: {exc}"
            continue
        for name, value in part.outputs.items():
            full = f"{name}_{suffix}"
            if full in missing and (not isinstance(value, Skipped) or full not in run.outputs):
                run.outputs[full] = value
                if name in part.tolerances:
                    run.tolerances[full] = part.tolerances[name]
    return run, error


def verify_case(path: str | Path, emit: Callable[[str], None] = print) -> bool:
    """Run one case and emit ``<case> <output> max_abs_err=<e>`` lines then ``<case> PASS|FAIL``."""
    label = str(path)
    try:
        case = GoldenCase.open(path)
        expected = case.outputs()
        run, error = run_all_outputs(case, set(expected))
    except Exception as exc:  # a broken case fails alone; the others still run
        emit(f"{label} ERROR {type(exc).__name__}: {exc}")
        emit(f"{label} FAIL")
        return False
    if error is not None and not any(_computed(run, name) for name in expected):
        emit(f"{label} ERROR {error}")
        emit(f"{label} FAIL")
        return False
    ok = True
    for name in sorted(expected):
        got = run.outputs.get(name)
        if isinstance(got, Skipped) and not NEVER_SKIPPED.search(name):
            emit(f"{label} {name} SKIPPED {got.reason}")
            continue
        if got is None or isinstance(got, Skipped):
            why = f"skipped ({got.reason}), but {name!r} is never skippable" if got is not None else "the port returned no tensor for it"
            emit(f"{label} {name} NOT_COMPUTED ({why}{'; ' + error if error else ''})")
            ok = False
            continue
        err = compare(expected[name], torch.as_tensor(got))
        tol = run.tolerances.get(name, case.tolerance)
        shape_note = "" if err != math.inf else f" (shape {tuple(torch.as_tensor(got).shape)} vs {tuple(expected[name].shape)})"
        emit(f"{label} {name} max_abs_err={err:.3e}{shape_note}")
        ok = ok and err <= tol
    emit(f"{label} {'PASS' if ok else 'FAIL'}")
    return ok


def verify(paths: list[str | Path], emit: Callable[[str], None] = print) -> bool:
    results = [verify_case(p, emit) for p in paths]
    return all(results) and bool(results)


def as_float32(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original checkpoints store some tensors in fp16; the ports compute in float32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
