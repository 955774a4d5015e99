"""``vtzoo verify-golden``: re-run a parity case of an original implementation and compare.

A case folder holds ``config.json`` (with a ``golden`` block naming the ``family``, the ``kind``
and where the ``weights`` come from), ``inputs.safetensors``, ``outputs.safetensors`` and either
``original_state_dict.safetensors`` or a ``weights_recipe`` in config.json. Each family provides
a runner ``run_case(case) -> dict[str, Tensor | Skipped]`` (or a :class:`GoldenRun`) that builds
the model from the case's config alone (never from the folder's name), converts the original
state dict and recomputes every output it can.
"""

from __future__ import annotations

import importlib
import json
import math
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


@dataclass
class GoldenCase:
    path: Path
    config: dict[str, Any]

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
        return self._load("inputs.safetensors")

    def outputs(self) -> dict[str, torch.Tensor]:
        return self._load("outputs.safetensors")

    def original_state_dict(self) -> dict[str, torch.Tensor]:
        """The original's state dict, in its own key names and dtypes."""
        weights = self.config["golden"].get("weights", "original_state_dict.safetensors")
        if weights == "weights_recipe" or "weights_recipe" in self.config and not (self.path / weights).is_file():
            raise GoldenError(f"{self.path}: weights come from config.json's weights_recipe; the runner regenerates them")
        return self._load(weights)

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


def verify_case(path: str | Path, emit: Callable[[str], None] = print) -> bool:
    """Run one case and emit ``<case> <output> max_abs_err=<e>`` lines then ``<case> PASS|FAIL``."""
    label = str(path)
    try:
        case = GoldenCase.open(path)
        result = _runner(case.family)(case)
        expected = case.outputs()
    except Exception as exc:  # a broken case fails alone; the others still run
        emit(f"{label} ERROR {type(exc).__name__}: {exc}")
        emit(f"{label} FAIL")
        return False
    run = result if isinstance(result, GoldenRun) else GoldenRun(outputs=dict(result))
    ok = True
    for name in sorted(expected):
        got = run.outputs.get(name)
        if isinstance(got, Skipped):
            emit(f"{label} {name} SKIPPED {got.reason}")
            continue
        if got is None:
            emit(f"{label} {name} NOT_COMPUTED (the port returned no tensor for it)")
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
