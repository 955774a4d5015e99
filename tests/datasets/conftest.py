from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vtzoo.datasets.synthetic import make_synthetic


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A 12-video generated dataset (small frames) in the vtzoo layout."""
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), count=12, size=32, frames=8, fps=4, seed=3)


@pytest.fixture
def place_video(tiny_synthetic):
    """Copy a real (generated) mp4 to ``path``, creating its folders."""

    def place(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_synthetic / "videos" / "video00000.mp4", path)
        return path

    return place
