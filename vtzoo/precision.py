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
