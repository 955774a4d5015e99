"""Resumable training state: model, optimizer and RNG in safetensors, the rest in JSON.

An output folder holds::

    config.json + model.safetensors   the best model so far (what vtzoo.create(NAME, weights=OUT) loads)
    trainer_state.json                progress, best metric, scheduler, identity of the run
    checkpoint-<step>/                the latest resumable state: model.safetensors,
                                      optimizer.safetensors (+ optimizer.json), rng.safetensors

A checkpoint folder is complete before ``trainer_state.json`` (written last, atomically) points at
it, and older ones are removed only after that; a run killed at any moment resumes from the last
state that was written whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors.torch import load_file, save_file

from vtzoo.errors import ConfigError

STATE_FILE = "trainer_state.json"
CHECKPOINT_PREFIX = "checkpoint-"
# what may differ between a run and the one it resumes (it only extends or reports the run)
RESUMABLE_CHANGES = ("recipe.train.epochs", "recipe.train.max_minutes", "recipe.train.max_steps", "recipe.data.num_workers",
                     "recipe.train.early_stopping", "recipe.sources", "recipe.description", "recipe.path")


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state dict as tensors (for safetensors) + the JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return _tensors(tensors), {"scalars": scalars, "param_groups": state["param_groups"]}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(out: Path, step: int, model_state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    """Write checkpoint-<step>/, then trainer_state.json pointing at it, then drop older checkpoints."""
    folder = out / f"{CHECKPOINT_PREFIX}{step}"
    tmp = out / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_tensors(model_state), str(tmp / "model.safetensors"))
    tensors, meta = optimizer_to_files(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(meta))
    save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    write_atomic(out / STATE_FILE, json.dumps({**state, "checkpoint": folder.name}, indent=1, sort_keys=True))
    for old in out.glob(f"{CHECKPOINT_PREFIX}*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def read_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); the run cannot be resumed") from None


def load_checkpoint(out: Path, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any], torch.Tensor]:
    """(model state dict, optimizer state dict, torch RNG state) of the checkpoint ``state`` names."""
    folder = out / state["checkpoint"]
    try:
        model = load_file(str(folder / "model.safetensors"))
        optimizer = optimizer_from_files(load_file(str(folder / "optimizer.safetensors")),
                                         json.loads((folder / "optimizer.json").read_text()))
        rng = load_file(str(folder / "rng.safetensors"))["torch"]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot resume from {folder}: {exc}") from None
    return model, optimizer, rng


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ, with both values."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            path = f"{prefix}{key}"
            if key not in current:
                out.append(f"{path}: {saved[key]!r} in the saved run, absent now")
            elif key not in saved:
                out.append(f"{path}: absent in the saved run, {current[key]!r} now")
            else:
                out += differences(saved[key], current[key], path + ".")
        return out
    if _jsonable(saved) != _jsonable(current):
        return [f"{prefix.rstrip('.')}: {saved!r} in the saved run, {current!r} now"]
    return []


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def check_resumable(saved: dict[str, Any], identity: dict[str, Any], out: Path) -> None:
    diffs = [d for d in differences(saved.get("identity", {}), _jsonable(identity))
             if not any(d.startswith(allowed) for allowed in RESUMABLE_CHANGES)]
    # the operator, then the model config, then the rest: the first difference is the telling one
    rank = {"operator": 0, "config": 1, "dataset": 2}
    diffs.sort(key=lambda d: rank.get(d.split(".", 1)[0].split(":", 1)[0], 3))
    if any(d.startswith("operator:") for d in diffs):
        diffs = [d for d in diffs if d.startswith("operator:")]
    if diffs:
        raise ConfigError(f"--resume: {out} holds another run; refusing to continue it. Differences: "
                          + "; ".join(diffs[:6]) + (f" (and {len(diffs) - 6} more)" if len(diffs) > 6 else ""))


def clear_run(out: Path, names: Iterable[str]) -> None:
    for name in names:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
