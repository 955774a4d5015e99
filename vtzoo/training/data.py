"""Samples for training and evaluation, decoded in DataLoader worker processes.

Each epoch visits the items in an order drawn from ``(seed, epoch)``; an item's own random choices
come from ``(seed, epoch, position)``. A run resumed in the middle of an epoch therefore sees the
same batches as one that never stopped. An item whose video cannot be decoded becomes a
:class:`Failed` marker: the batch goes on without it, the trainer counts it and leaves it out of
later epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vtzoo.errors import VtzooError
from vtzoo.training.family import item_rng


@dataclass
class Failed:
    key: str
    reason: str


@dataclass
class Sample:
    """What the trainer iterates: an item and, for one-caption-per-sample epochs, its caption."""

    item: Any
    caption: int | None = None  # index of the caption to use (None: drawn at random)


class SampleDataset(Dataset):
    def __init__(self, samples: Sequence[Sample], load: Callable[[Any, Any, np.random.Generator], dict],
                 seed: int, epoch: int, offset: int = 0):
        self.samples, self.load, self.seed, self.epoch, self.offset = list(samples), load, seed, epoch, offset

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        sample = self.samples[index]
        rng = item_rng(self.seed, self.epoch, self.offset + index)
        try:
            out = self.load(sample, rng)
        except (VtzooError, OSError, ValueError, RuntimeError) as exc:  # decoding errors of any backend
            return Failed(sample.item.key, f"{type(exc).__name__}: {exc}".splitlines()[0])
        out.setdefault("key", sample.item.key)
        return out


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # the decoders share the cores with the training process


def make_loader(dataset: SampleDataset, batch_size: int, collate: Callable, workers: int) -> DataLoader:
    def collate_with_failures(items: list[Any]) -> dict[str, Any]:
        good = [i for i in items if not isinstance(i, Failed)]
        batch = collate(good) if good else {}
        batch["key"] = [i["key"] for i in good]
        batch["failed"] = [i for i in items if isinstance(i, Failed)]
        batch["size"] = len(good)
        return batch

    workers = min(workers, max(0, len(dataset) // max(1, batch_size)), os.cpu_count() or 1)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_with_failures, num_workers=workers,
        worker_init_fn=_worker_init if workers else None, prefetch_factor=2 if workers else None,
        multiprocessing_context="fork" if workers else None,
        # its own generator: creating a loader must not draw from torch's global RNG (the
        # training randomness, saved in checkpoints and replayed on resume)
        generator=torch.Generator().manual_seed(0),
    )


def epoch_order(samples: Sequence[Sample], seed: int, epoch: int) -> list[Sample]:
    order = np.random.default_rng([seed, epoch, 0x5EED]).permutation(len(samples))
    return [samples[int(i)] for i in order]


def training_samples(items: Sequence[Any], expand_captions: bool) -> list[Sample]:
    if not expand_captions:
        return [Sample(item) for item in items]
    return [Sample(item, k) for item in items for k in range(max(1, len(item.captions)))]


def pick_caption(sample: Sample, rng: np.random.Generator) -> str | None:
    captions = sample.item.captions
    if not captions:
        return None
    if sample.caption is not None:
        return captions[sample.caption]
    return captions[int(rng.integers(len(captions)))]
