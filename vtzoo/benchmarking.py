"""Measuring operators: FLOPs, latency and memory, shared by benchmarks/ and the families' own
benchmark scripts."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Samples the process's resident memory in a thread; reports the peak above the start."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()

    def __enter__(self) -> "PeakMemory":
        self.base = _rss_mb()
        self.peak = self.base
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Q @ K^T and P @ V of the fused CPU attention kernel, which FlopCounterMode leaves at 0."""
    *batch, q_len, head_dim = query_shape
    k_len, v_dim = key_shape[-2], value_shape[-1]
    heads = 1
    for size in batch:
        heads *= size
    return 2 * heads * q_len * k_len * (head_dim + v_dim)


# torch counts the CUDA attention kernels but not the CPU one that scaled_dot_product_attention
# dispatches to here; without this, models built on SDPA would look cheaper than einsum ports.
_CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops}


def gflops(fn: Callable[[], Any]) -> float:
    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM_FLOPS)
    with counter, torch.inference_mode():
        fn()
    return counter.get_total_flops() / 1e9


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times


def time_interleaved(fns: list[Callable[[], Any]], repeats: int) -> list[tuple[list[float], float]]:
    """Time several implementations in alternation, so a noisy machine slows them alike; each
    with the memory its cold first call added."""
    times: list[list[float]] = [[] for _ in fns]
    memory: list[float] = []
    with torch.inference_mode():
        for fn in fns:
            with PeakMemory() as mem:
                fn()  # warm-up
            memory.append(mem.peak - mem.base)
        for _ in range(repeats):
            for slot, fn in zip(times, fns):
                start = time.perf_counter()
                fn()
                slot.append(time.perf_counter() - start)
    return list(zip(times, memory))
