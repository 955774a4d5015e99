"""Regenerate seeded weights from a golden case's ``weights_recipe`` (bit for bit).

Tensors too large to store in a parity case (VGGish: 72M parameters, irCSN-152: 30M) are
described in config.json instead: one CPU ``torch.Generator`` seeded once, then, in the order of
``entries``, ``(torch.rand(shape) - 0.5) * scale + offset`` in float32 for ``rand`` entries and a
constant (no draws) for ``const`` entries. Each entry's ``sha256`` of its little-endian bytes is
checked, so a wrong order or dtype fails loudly. Recipes of another kind name a ``method`` that
their family's runner regenerates (e.g. MoViNet's ``movinet-seeded-v1``).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import torch

from vtzoo.errors import VtzooError


class RecipeError(VtzooError, ValueError):
    """A recipe whose regenerated tensors do not match the checksums it gives."""


def _digest(tensor: torch.Tensor) -> str:
    """sha256 of the tensor's little-endian bytes (C order)."""
    array = tensor.detach().cpu().contiguous().numpy()
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        array = array.astype(array.dtype.newbyteorder("<"))
    return hashlib.sha256(memoryview(array).cast("B")).hexdigest()


def regenerate_weights(recipe: dict[str, Any], verify: bool = True) -> dict[str, torch.Tensor]:
    """The state dict ``recipe`` describes; raises :class:`RecipeError` on a checksum mismatch."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(recipe["seed"]))
    state: dict[str, torch.Tensor] = {}
    for entry in recipe["entries"]:
        shape = tuple(entry["shape"])
        if entry.get("kind", "rand") == "const":
            value = torch.full(shape, entry["value"], dtype=getattr(torch, entry.get("dtype", "int64")))
        else:
            u = torch.rand(shape, generator=generator, dtype=torch.float32)
            value = (u - 0.5) * float(entry["scale"]) + float(entry["offset"])
        expected = entry.get("sha256_le") or entry.get("sha256_le_f32")
        if verify and expected and _digest(value) != expected:
            raise RecipeError(f"weights_recipe: regenerated {entry['key']} does not match its sha256")
        state[entry["key"]] = value
    return state

