"""What a model family provides to the trainer, and how the trainer finds it.

By convention a family's training code is ``<operator package>/training.py`` (for the built-in
families ``vtzoo/operators/<family>/training.py``) and defines ``FAMILY``, an instance of a
:class:`TrainingFamily` subclass. Its recipes sit beside it in ``recipes/*.yaml``. Nothing central
lists the families: a new one (or a plug-in operator) adds its own ``training.py``.

The trainer drives a family through four steps:

* ``load(op, sample, settings, train, rng)`` decodes one item (in a DataLoader worker) into a
  sample dict. Random choices (which caption) come from ``rng``, drawn from (seed, epoch,
  position), so an epoch is the same every time it runs, also after a resume;
* ``collate(samples)`` stacks samples into a batch;
* ``encode(op, batch)`` runs the network with gradients and returns a dict of tensors (for
  contrastive families: the embeddings; the loss compares every pair of the global batch);
* ``loss(op, encoded)`` the family's original objective on the (merged) encodings.

Evaluation uses the operator's own inference: ``video_input(batch)`` turns a collated batch into
what ``op.embed_video`` takes; texts go through ``op.embed_text`` and scores through
``op.similarity`` (retrieval), or ``predict(op, batch)`` ranks the labels (classification).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from vtzoo.errors import ConfigError
from vtzoo.training.recipe import family_package, from_mapping  # noqa: F401  (re-exported)

RETRIEVAL, CLASSIFICATION = "retrieval", "classification"


@dataclasses.dataclass
class NoSettings:
    pass


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item in one epoch (independent of workers and batches)."""
    return np.random.default_rng([seed, epoch, index])


class TrainingFamily:
    task: ClassVar[str] = RETRIEVAL
    # True when the loss compares items across the batch (contrastive): with gradient accumulation
    # the trainer then caches embeddings so the loss still sees the whole global batch
    cross_batch: ClassVar[bool] = True
    Settings: ClassVar[type] = NoSettings  # the dataclass the recipe's ``family:`` section fills

    def settings(self, values: dict[str, Any], where: str) -> Any:
        return from_mapping(self.Settings, values, f"{where}: family")

    def for_settings(self, settings: Any) -> "TrainingFamily":
        """The family that trains with ``settings``: one whose recipes train different tasks (a
        pre-training and a linear probe on its features) returns the one the recipe asks for."""
        return self

    # -- run set-up -------------------------------------------------------------------------------
    def prepare(self, run: Any) -> None:
        """Called once before training (e.g. compute and cache features); ``run`` is the Trainer."""

    def epoch_order(self, run: Any, samples: Sequence[Any], epoch: int) -> list[int] | None:
        """The family's own order of the training samples in ``epoch`` (indices), or None for a
        shuffle. The trainer stores it with the checkpoint, so a resumed epoch keeps it."""
        return None

    def epoch_settings(self, settings: Any, epoch: int) -> Any:
        """The settings in force in ``epoch`` (a curriculum changes them between epochs)."""
        return settings

    # -- data (runs in DataLoader workers) --------------------------------------------------------
    def model_config(self, config: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
        """The model config to build with (a classifier sets its number of classes from ``labels``)."""
        return config

    def load(self, op: Any, sample: Any, settings: Any, train: bool, rng: np.random.Generator) -> dict[str, Any]:
        """One :class:`~vtzoo.training.data.Sample` (``sample.item``: a VideoItem) -> a sample dict."""
        raise NotImplementedError

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)

    # -- training -------------------------------------------------------------------------------
    def encode(self, op: Any, batch: dict[str, Any], settings: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def merge(self, parts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Concatenate the encodings of several micro-batches (tensors padded along dim 1)."""
        return {key: concat_padded([p[key] for p in parts]) for key in parts[0]}

    def loss(self, op: Any, encoded: dict[str, torch.Tensor], settings: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        raise NotImplementedError

    def parameters(self, op: Any) -> list[tuple[str, torch.nn.Parameter]]:
        """The trained parameters (default: every parameter of ``op.model``)."""
        return list(op.model.named_parameters())

    def trained_modules(self, op: Any) -> list[torch.nn.Module]:
        """Modules switched to train mode for training steps (default: ``op.model``)."""
        return [op.model]

    # -- evaluation -------------------------------------------------------------------------------
    def video_input(self, op: Any, batch: dict[str, Any]) -> Any:
        raise NotImplementedError

    def eval_texts(self, item: Any) -> list[Any]:
        """The queries of an item at retrieval evaluation (default: its captions)."""
        return list(item.captions)

    def embed_text(self, op: Any, texts: list[Any]) -> Any:
        return op.embed_text(texts)

    def predict(self, op: Any, batch: dict[str, Any], labels: Sequence[str]) -> list[list[int]]:
        """Classification: for each item, label indices best first (at least 5 when there are)."""
        raise NotImplementedError

    # -- saving -----------------------------------------------------------------------------------
    def save(self, op: Any, directory: Any) -> None:
        """Write the trained model where ``vtzoo.create(name, weights=directory)`` finds it."""
        op.model.save_pretrained(directory)


def default_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of equal shape, keep everything else as lists."""
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch


def concat_padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    if tensors[0].dim() < 2 or len({t.shape[1] for t in tensors}) == 1:
        return torch.cat(list(tensors))
    width = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = t.new_zeros((t.shape[0], width - t.shape[1], *t.shape[2:]))
        padded.append(torch.cat([t, pad], dim=1))
    return torch.cat(padded)


def get_family(operator: str) -> TrainingFamily:
    package = family_package(operator)
    try:
        module = importlib.import_module(f"{package}.training")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.training":
            raise
        raise ConfigError(f"operator {operator!r} has no training code ({package}.training)") from None
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, TrainingFamily):
        raise ConfigError(f"{package}.training defines no FAMILY (a TrainingFamily instance)")
    return family
