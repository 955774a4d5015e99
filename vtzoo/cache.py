"""Where vtzoo keeps what it computed once: ``$VTZOO_CACHE``, else ``$XDG_CACHE_HOME/vtzoo``
(``~/.cache/vtzoo``). Downloaded weights stay in the Hugging Face cache."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("VTZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "vtzoo"
    )
    return Path(base)
