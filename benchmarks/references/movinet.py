"""Reference adapter: the MoViNet-pytorch port (a checkout at PATH) on the same weights and input,
for ``benchmarks/bench.py --op movinet --reference PATH`` (whole clips) and ``--stream`` (the
port's frame-by-frame use: its layers keep their activations between calls)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from vtzoo.operators.movinet.benchmark import build, build_reference_model, max_abs_diff  # noqa: F401


def vtzoo_output(op, clip: torch.Tensor, stream: bool = False) -> torch.Tensor:
    """What the port's call returns (the logits), computed by vtzoo on the same clip."""
    with torch.inference_mode():
        if not stream:
            return op.model(clip)
        state = op.init_state(clip.shape[0], *clip.shape[-2:])
        for t in range(clip.shape[2]):
            logits, _, state = op.model.step(clip[:, :, t : t + 1], state)
        return logits


def build_stream(path: str, op, clip: torch.Tensor) -> tuple[Callable[[], Any], int]:
    """The port fed ``clip`` one frame at a time from clean buffers; the last frame's logits."""
    model = build_reference_model(path, op)

    def call() -> torch.Tensor:
        model.clean_activation_buffers()
        for t in range(clip.shape[2]):
            logits = model(clip[:, :, t : t + 1])
        return logits

    return call, sum(p.numel() for p in model.parameters())
