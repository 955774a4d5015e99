"""``Embeddings``: what every operator returns, and its one file format.

``save``/``load`` are the serialisation used by the CLI (``vtzoo embed``), the folder cache and
the index's token store: tensors in safetensors (``pooled``, ``tokens``, ``mask`` and
``extras.<name>`` for tensor extras), everything else (provenance, the operator fingerprint) as
JSON in the safetensors metadata. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

_EXTRA_PREFIX = "extras."
_META_KEY = "vtzoo_embeddings"


@dataclass
class Embeddings:
    """What an operator returns for a batch of videos or texts.

    ``pooled`` is the one vector per item a vector index stores. Models that score with more
    than one vector per item (frames, words, clips) also fill ``tokens`` (N, L, D) and ``mask``
    (N, L), 1 on real positions. ``extras`` carries family-specific tensors a model's own
    ``similarity`` needs (e.g. DRL's token weights) and provenance (frame indices, backend).
    """

    pooled: torch.Tensor
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooled.dim() != 2:
            raise ValueError(f"Embeddings.pooled must be (N, D), got shape {tuple(self.pooled.shape)}")
        if self.tokens is not None and self.tokens.dim() != 3:
            raise ValueError(f"Embeddings.tokens must be (N, L, D), got shape {tuple(self.tokens.shape)}")
        if self.mask is not None and self.tokens is not None and self.mask.shape != self.tokens.shape[:2]:
            raise ValueError(
                f"Embeddings.mask shape {tuple(self.mask.shape)} does not match tokens {tuple(self.tokens.shape[:2])}"
            )

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "Embeddings":
        """Select items (rows) while keeping every per-item tensor aligned."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        n = len(self)

        def pick(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
                return value[index]
            if isinstance(value, list) and len(value) == n:
                idx = range(n)[index] if isinstance(index, slice) else index
                return [value[int(i)] for i in idx]
            return value

        return Embeddings(
            pooled=self.pooled[index],
            tokens=None if self.tokens is None else self.tokens[index],
            mask=None if self.mask is None else self.mask[index],
            extras={k: pick(v) for k, v in self.extras.items()},
        )

    @staticmethod
    def concat(parts: Sequence["Embeddings"]) -> "Embeddings":
        """Concatenate batches; token tensors of different lengths are right-padded (mask 0)."""
        if not parts:
            raise ValueError("Embeddings.concat needs at least one part")
        pooled = torch.cat([p.pooled for p in parts])
        tokens = mask = None
        if all(p.tokens is not None for p in parts):
            length = max(p.tokens.shape[1] for p in parts)
            tokens = torch.cat([_pad_dim1(p.tokens, length) for p in parts])
            masks = [
                p.mask if p.mask is not None else torch.ones(p.tokens.shape[:2], dtype=torch.long)
                for p in parts
            ]
            mask = torch.cat([_pad_dim1(m, length) for m in masks])
        extras: dict[str, Any] = {}
        for key in parts[0].extras:
            values = [p.extras.get(key) for p in parts]
            if all(isinstance(v, torch.Tensor) for v in values):
                if values[0].dim() >= 2:
                    length = max(v.shape[1] for v in values)
                    extras[key] = torch.cat([_pad_dim1(v, length) for v in values])
                else:
                    extras[key] = torch.cat(values)
            elif all(isinstance(v, list) for v in values):
                extras[key] = [item for v in values for item in v]
            else:
                extras[key] = values[0]
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras=extras)

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
        """Write to ``path`` (safetensors), atomically. ``metadata`` (JSON-able) rides along."""
        from safetensors.torch import save_file

        tensors = {"pooled": self.pooled}
        if self.tokens is not None:
            tensors["tokens"] = self.tokens
        if self.mask is not None:
            tensors["mask"] = self.mask
        tensors.update({_EXTRA_PREFIX + k: v for k, v in self.extras.items() if isinstance(v, torch.Tensor)})
        plain = {k: v for k, v in self.extras.items() if not isinstance(v, torch.Tensor)}
        header = {_META_KEY: json.dumps({"extras": plain, "metadata": metadata or {}}, default=str)}
        path = Path(path)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # writers in several processes never share one
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=header)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Embeddings":
        """Read what :meth:`save` wrote; the saved ``metadata`` is in ``extras["metadata"]``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            header = json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))
        extras: dict[str, Any] = dict(header.get("extras", {}))
        extras.update({k[len(_EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(_EXTRA_PREFIX)})
        if header.get("metadata"):
            extras["metadata"] = header["metadata"]
        return cls(pooled=tensors["pooled"], tokens=tensors.get("tokens"), mask=tensors.get("mask"), extras=extras)

    def to(self, device: torch.device | str) -> "Embeddings":
        move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t  # noqa: E731
        return Embeddings(
            pooled=move(self.pooled),
            tokens=move(self.tokens),
            mask=move(self.mask),
            extras={k: move(v) for k, v in self.extras.items()},
        )


def _pad_dim1(tensor: torch.Tensor, length: int) -> torch.Tensor:
    if tensor.shape[1] == length:
        return tensor
    pad_shape = (tensor.shape[0], length - tensor.shape[1], *tensor.shape[2:])
    return torch.cat([tensor, tensor.new_zeros(pad_shape)], dim=1)


