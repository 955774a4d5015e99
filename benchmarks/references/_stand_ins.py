"""What the reference adapters share: importing an original with a module stood in for another."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator


@contextmanager
def module_replaced(name: str, stand_in: ModuleType) -> Iterator[None]:
    """``sys.modules[name]`` is ``stand_in`` inside the block and what it was before after it, so an
    original that imports a module of an older library gets the stand-in and vtzoo keeps its own."""
    previous = sys.modules.get(name)
    sys.modules[name] = stand_in
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
