"""vtzoo: a model zoo of video-text operators behind one interface.

The public names are imported on first use, so ``import vtzoo`` (and the command line's start)
does not load torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Embeddings": "vtzoo.embeddings",
    "Operator": "vtzoo.operators.base",
    "InputError": "vtzoo.errors",
    "UnsupportedTask": "vtzoo.errors",
    "VtzooError": "vtzoo.errors",
    "load_video": "vtzoo.video",
    "create": "vtzoo.registry.operators",
    "list_operators": "vtzoo.registry.operators",
    "register_operator": "vtzoo.registry.operators",
    "train": "vtzoo.training",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vtzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
