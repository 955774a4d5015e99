"""Numeric precision of an operator: which dtype computes, and where it is safe.

``precision`` is an operator option: "fp32", "bf16", "fp16" or "auto". "auto" is bf16 where the
device computes bf16 natively (a CPU with AMX or AVX512-BF16, a CUDA device that supports it),
else fp32. The precision an operator resolved to is part of its fingerprint, so an index never
mixes vectors of two precisions without knowing. Returned embeddings are always float32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Iterator

import torch

from vtzoo.errors import ConfigError, did_you_mean

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16 in the CPU flags (torch's capability string does not report AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def device_supports(precision: str, device: torch.device) -> bool:
    if precision == "fp32":
        return True
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # fp16 matmuls on CPU are emulated and slower than fp32; allowed, but never chosen by "auto"
        return True
    return precision == "fp16" or device.type == "mps" and precision == "bf16"


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The concrete precision ("fp32" | "bf16" | "fp16") that ``precision`` means on ``device``."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.{did_you_mean(precision, PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if not device_supports(precision, device):
        raise ConfigError(f"precision {precision!r} is not supported on device {device} (use 'fp32' or 'auto')")
    return precision


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Mixed precision for ``precision`` on ``device``: a no-op for fp32."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=DTYPES[precision]):
        yield


def full_precision(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """A region that computes in float32 even inside an operator's mixed-precision context.

    Families put what bf16 does not compute accurately here (similarities, small heads); in
    float32 operators it changes nothing.
    """
    return torch.autocast(device_type=torch.device(device).type, enabled=False)


# Layers whose cost is a matrix product: the ones whose weights bf16 pays for.
MATMUL_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def cast_matmul_weights(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast the weights of every Linear / Conv layer under ``module`` to ``dtype``, in place.

    Norms, embeddings and free parameters stay float32. The layers then need inputs of
    ``dtype``, which the mixed-precision context (:func:`autocast`) provides; autocast would
    otherwise re-cast the float32 weights on every call, which is most of its cost on CPU.
    """
    for layer in module.modules():
        if isinstance(layer, MATMUL_LAYERS):
            layer.to(dtype)
    return module


def to_channels_last_3d(module: torch.nn.Module, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A 3D CNN in the ``channels_last_3d`` memory format (and ``dtype``), in place.

    oneDNN's fast bf16 3D convolutions need channels-last activations; with the default layout
    bf16 gains little or even loses (measured on S3D and MoViNet, docs/operators/*.md).
    """
    if dtype is not None:
        module.to(dtype)
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv3d):
            layer.weight.data = layer.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def as_channels_last_3d(video: torch.Tensor, like: torch.nn.Module) -> torch.Tensor:
    """``video`` (B, C, T, H, W) in the dtype and memory format of ``like``'s first weight."""
    weight = next(like.parameters())
    video = video.to(device=weight.device, dtype=weight.dtype)
    if weight.dtype != torch.float32 and video.dim() == 5:  # prepare_3d_cnn made it channels-last
        video = video.contiguous(memory_format=torch.channels_last_3d)
    return video


def prepare_3d_cnn(model: torch.nn.Module, precision: str) -> None:
    """The precision policy of vtzoo's 3D CNNs (S3D, MoViNet, irCSN): for bf16 the whole network
    (BatchNorm included, an affine map at inference) in bf16 and ``channels_last_3d``; float32
    weights and layout untouched otherwise. Inputs follow with :func:`as_channels_last_3d`."""
    if precision != "fp32":
        to_channels_last_3d(model, DTYPES[precision])
