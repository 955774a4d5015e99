"""Errors of weight resolution, and the one hash every check uses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from vtzoo.errors import VtzooError


class WeightsError(VtzooError, RuntimeError):
    """Weights that cannot be found, read, verified or loaded."""


class WeightsIntegrityError(WeightsError):
    """A downloaded file whose sha256 differs from the one its card gives."""


class OfflineNotCachedError(WeightsError):
    """Offline (``HF_HUB_OFFLINE=1`` or no network) and the files are not in the cache."""


_HASHED: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime) -> sha256, per process


def sha256_of(path: str | Path) -> str:
    """sha256 hex digest of a file (remembered per process while the file is unchanged)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(real, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]
