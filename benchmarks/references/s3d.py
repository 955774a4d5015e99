"""Reference adapter: the original S3D of MIL-NCE (a checkout of antoine77340/S3D_HowTo100M,
``s3dg.py``) on the same weights and input, for ``benchmarks/bench.py --op s3d --reference PATH``.
VideoCLIP's and COOT's feature extractor is this network.

The original is built as its README builds it (``S3D(dict_path, 512)``); its text branch reads a
word list from ``dict_path``, so a three-word list is written to a temporary file (the video path
never uses it). Its state dict is converted into vtzoo (the text branch dropped, as vtzoo does),
and the timed call runs it on the same 30-frame windows as vtzoo's extractor, L2-normalising each
window's ``video_embedding`` as the feature extractor does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

EMBEDDINGS_FIELD = "tokens"  # (videos, windows, 512): one feature per window


def _original_model(path: str) -> torch.nn.Module:
    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    from s3dg import S3D  # noqa: E402  (the checkout's module)

    with tempfile.TemporaryDirectory() as tmp:
        words = Path(tmp) / "dict.npy"
        np.save(words, np.array(["a", "video", "frame"]))
        torch.manual_seed(0)
        model = S3D(str(words), 512)
    return model.float().eval()


def build(path: str, op, clips: list[torch.Tensor]) -> tuple[Callable[[], Any], int]:
    """The original on the windows of ``clips`` (each (T, 3, 224, 224) in [0, 1]), vtzoo loaded alike."""
    from vtzoo.backbones.s3d.features import frames_to_windows
    from vtzoo.registry.weights import load_state_dict_strict

    original = _original_model(path)
    converted = op.model.converters()["original"](original.state_dict(), op.model.config)
    load_state_dict_strict(op.model, converted, origin=f"original S3D at {path}")
    frames = op.windowing.window_frames
    windows = [frames_to_windows(clip, frames) for clip in clips]
    counts = [len(w) for w in windows]
    batch = torch.cat(windows)

    def run() -> torch.Tensor:
        features = torch.nn.functional.normalize(original(batch)["video_embedding"], dim=-1)
        return torch.stack(list(features.split(counts)))

    return run, sum(p.numel() for p in original.parameters())
