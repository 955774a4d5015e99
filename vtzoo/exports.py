"""Embedding files, in the format their suffix names: what ``vtzoo embed -o FILE`` writes.

Every format carries the same facts: each item's path and provenance (backend, frame indices,
timestamps, rotation, ...) and ``made_by`` (operator, variant, weights, fingerprint, vtzoo
version), so a file says what made it.

========== =====================================================================================
suffix     layout
========== =====================================================================================
.safetensors  tensors ``pooled`` (N, D), ``tokens`` (N, L, D), ``mask`` (N, L); JSON metadata
              ``items``, ``made_by`` (and ``videos``: the paths)
.npz          arrays ``pooled``, ``tokens``, ``mask``, ``paths``; ``items`` and ``made_by`` as JSON
              strings (``np.load(..., allow_pickle=False)`` reads all of it)
.npy          the ``pooled`` array alone; ``FILE.json`` beside it holds ``items`` and ``made_by``
.parquet      one row per item: ``path``, ``pooled``, ``tokens``, ``mask``, ``provenance`` (JSON);
              ``made_by`` in the schema metadata (needs pyarrow)
.jsonl        one JSON object per item: ``path``, ``pooled``, ``tokens``, ``mask``, ``provenance``,
              ``made_by``
========== =====================================================================================

Files are written to a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vtzoo.errors import UsageError

FORMATS = (".safetensors", ".npy", ".npz", ".parquet", ".jsonl")


def check_export_path(path: str | Path, flag: str = "-o") -> None:
    """Refuse a suffix no writer handles (or whose library is missing), before any work."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        names = ", ".join(FORMATS[:-1]) + f" or {FORMATS[-1]}"
        raise UsageError(f"{flag} {path}: unknown output format {suffix or '(no suffix)'!r} (use {names})")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(f"{flag} {path}: writing .parquet needs pyarrow (pip install 'vtzoo[parquet]')") from None


def write_embeddings(path: str | Path, paths: Sequence[str], embeddings: Any, made_by: dict[str, Any]) -> Path:
    """Write ``embeddings`` (an ``Embeddings`` of ``len(paths)`` rows) to ``path`` by its suffix."""
    path = Path(path)
    check_export_path(path)
    arrays = {"pooled": embeddings.pooled}
    if embeddings.tokens is not None:
        arrays["tokens"] = embeddings.tokens
        arrays["mask"] = embeddings.mask
    arrays = {name: value.detach().cpu().contiguous().numpy() for name, value in arrays.items()}
    provenance = embeddings.extras.get("provenance") or [None] * len(paths)
    items = [{"path": p, "provenance": jsonable(record)} for p, record in zip(paths, provenance)]
    _WRITERS[path.suffix.lower()](path, arrays, items, jsonable(made_by))
    return path


def jsonable(value: Any) -> Any:
    """Plain JSON values from provenance records (numpy scalars and arrays, tuples, paths)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _safetensors(path: Path, arrays: dict, items: list, made_by: dict) -> None:
    from safetensors.numpy import save_file

    metadata = {
        "operator": str(made_by.get("operator", "")),
        "variant": str(made_by.get("variant", "")),
        "videos": json.dumps([item["path"] for item in items]),
        "items": json.dumps(items),
        "made_by": json.dumps(made_by),
    }
    _atomic(path, lambda tmp: save_file(arrays, str(tmp), metadata=metadata))


def _npz(path: Path, arrays: dict, items: list, made_by: dict) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a file object: numpy does not append ".npz" to the name
            np.savez(handle, **arrays, paths=np.array([item["path"] for item in items]),
                     items=np.array(json.dumps(items)), made_by=np.array(json.dumps(made_by)))

    _atomic(path, write)


def _npy(path: Path, arrays: dict, items: list, made_by: dict) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, arrays["pooled"])

    sidecar = {"items": items, "made_by": made_by, "note": "pooled embeddings only: tokens and mask need .npz or .safetensors"}
    sidecar_path = path.with_name(path.name + ".json")
    _atomic(sidecar_path, lambda tmp: tmp.write_text(json.dumps(sidecar, indent=1)))
    _atomic(path, write)


def _rows(arrays: dict, items: list) -> list[dict[str, Any]]:
    rows = []
    for row, item in enumerate(items):
        record = {"path": item["path"], **{name: array[row].tolist() for name, array in arrays.items()}}
        record["provenance"] = item["provenance"]
        rows.append(record)
    return rows


def _parquet(path: Path, arrays: dict, items: list, made_by: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(arrays, items)
    for row in rows:
        row["provenance"] = json.dumps(row["provenance"])
    table = pa.Table.from_pylist(rows).replace_schema_metadata({"made_by": json.dumps(made_by)})
    _atomic(path, lambda tmp: pq.write_table(table, str(tmp)))


def _jsonl(path: Path, arrays: dict, items: list, made_by: dict) -> None:
    lines = [json.dumps({**row, "made_by": made_by}) for row in _rows(arrays, items)]
    _atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


_WRITERS = {".safetensors": _safetensors, ".npz": _npz, ".npy": _npy, ".parquet": _parquet, ".jsonl": _jsonl}
