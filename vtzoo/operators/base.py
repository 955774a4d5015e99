"""The operator contract every model family implements.

An operator wraps one model family behind four tasks (embed video, embed text, similarity,
classify). Callers hand over what they have (a path, bytes, a decoded clip, or features for
feature-level models); batching, ``torch.inference_mode()``, device and dtype are the
operator's job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, Union

import torch

from vtzoo.errors import InputError, UnsupportedTask, VtzooError  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.registry.cards import WeightCard

VIDEO_EMBEDDING = "video-embedding"
TEXT_EMBEDDING = "text-embedding"
VIDEO_TEXT_SIMILARITY = "video-text-similarity"
VIDEO_CLASSIFICATION = "video-classification"
ALL_TASKS = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY, VIDEO_CLASSIFICATION})

# What `embed_video` / `classify` accept: a path, raw bytes, a decoded clip (T, C, H, W) as a
# tensor or (T, H, W, C) uint8 numpy array, or a family's feature tensors; or a list of those.
VideoInput = Union[str, os.PathLike, bytes, torch.Tensor, Any]


def as_text_list(texts: str | Sequence[str]) -> list[str]:
    """``embed_text``'s argument as a non-empty list of strings (a lone string is one text)."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise InputError("embed_text needs at least one text (got an empty list)")
    bad = [type(t).__name__ for t in items if not isinstance(t, str)]
    if bad:
        raise TypeError(f"embed_text takes a list of strings, got {', '.join(bad[:3])}")
    return items


@dataclass
class Embeddings:
    """What an operator returns for a batch of videos or texts.

    ``pooled`` is the one vector per item a vector index stores. Models that score with more
    than one vector per item (frames, words, clips) also fill ``tokens`` (N, L, D) and ``mask``
    (N, L), 1 on real positions. ``extras`` carries family-specific tensors a model's own
    ``similarity`` needs (e.g. DRL's token weights) and provenance (frame indices, backend).
    """

    pooled: torch.Tensor
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooled.dim() != 2:
            raise ValueError(f"Embeddings.pooled must be (N, D), got shape {tuple(self.pooled.shape)}")
        if self.tokens is not None and self.tokens.dim() != 3:
            raise ValueError(f"Embeddings.tokens must be (N, L, D), got shape {tuple(self.tokens.shape)}")
        if self.mask is not None and self.tokens is not None and self.mask.shape != self.tokens.shape[:2]:
            raise ValueError(
                f"Embeddings.mask shape {tuple(self.mask.shape)} does not match tokens {tuple(self.tokens.shape[:2])}"
            )

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "Embeddings":
        """Select items (rows) while keeping every per-item tensor aligned."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        n = len(self)

        def pick(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
                return value[index]
            if isinstance(value, list) and len(value) == n:
                idx = range(n)[index] if isinstance(index, slice) else index
                return [value[int(i)] for i in idx]
            return value

        return Embeddings(
            pooled=self.pooled[index],
            tokens=None if self.tokens is None else self.tokens[index],
            mask=None if self.mask is None else self.mask[index],
            extras={k: pick(v) for k, v in self.extras.items()},
        )

    @staticmethod
    def concat(parts: Sequence["Embeddings"]) -> "Embeddings":
        """Concatenate batches; token tensors of different lengths are right-padded (mask 0)."""
        if not parts:
            raise ValueError("Embeddings.concat needs at least one part")
        pooled = torch.cat([p.pooled for p in parts])
        tokens = mask = None
        if all(p.tokens is not None for p in parts):
            length = max(p.tokens.shape[1] for p in parts)
            tokens = torch.cat([_pad_dim1(p.tokens, length) for p in parts])
            masks = [
                p.mask if p.mask is not None else torch.ones(p.tokens.shape[:2], dtype=torch.long)
                for p in parts
            ]
            mask = torch.cat([_pad_dim1(m, length) for m in masks])
        extras: dict[str, Any] = {}
        for key in parts[0].extras:
            values = [p.extras.get(key) for p in parts]
            if all(isinstance(v, torch.Tensor) for v in values):
                if values[0].dim() >= 2:
                    length = max(v.shape[1] for v in values)
                    extras[key] = torch.cat([_pad_dim1(v, length) for v in values])
                else:
                    extras[key] = torch.cat(values)
            elif all(isinstance(v, list) for v in values):
                extras[key] = [item for v in values for item in v]
            else:
                extras[key] = values[0]
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras=extras)

    def to(self, device: torch.device | str) -> "Embeddings":
        move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t  # noqa: E731
        return Embeddings(
            pooled=move(self.pooled),
            tokens=move(self.tokens),
            mask=move(self.mask),
            extras={k: move(v) for k, v in self.extras.items()},
        )


def _pad_dim1(tensor: torch.Tensor, length: int) -> torch.Tensor:
    if tensor.shape[1] == length:
        return tensor
    pad_shape = (tensor.shape[0], length - tensor.shape[1], *tensor.shape[2:])
    return torch.cat([tensor, tensor.new_zeros(pad_shape)], dim=1)


class Operator:
    """One model family behind the common interface.

    Subclasses set ``name`` and ``tasks``, implement ``build`` (how a card, a weights spec and
    config overrides become a ready operator) and the tasks they support. Everything they do
    not support raises :class:`UnsupportedTask`.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[frozenset[str]] = frozenset()
    default_variant: ClassVar[str | None] = None
    precision: str = "fp32"  # what the operator computes in ("fp32" | "bf16" | "fp16"), set at create
    runtime: Any = None  # vtzoo.runtime.RuntimeOptions (backend, compile), set at create

    def __init__(self, model: torch.nn.Module, card: "WeightCard | None" = None, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.card = card
        self.device = torch.device(device)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        card: "WeightCard | None",
        weights: Any = None,
        device: str | torch.device = "cpu",
        **config: Any,
    ) -> "Operator":
        """Build the operator for ``card`` (a variant), load ``weights`` and apply ``config``."""
        raise NotImplementedError(f"{cls.__name__} must implement build()")

    # -- precision ----------------------------------------------------------------------------
    def networks(self) -> list[torch.nn.Module]:
        """The networks the operator runs (its model, and feature extractors built at once)."""
        return [self.model]

    def configure(self, precision: str = "auto", backend: str = "torch", compile: bool = False) -> "Operator":
        """Set the precision and runtime (``create`` does this once; call it on a freshly built,
        float32 operator). Every network prepares its weights (:meth:`PretrainedModel.apply_precision`)
        and hands its heavy towers to the runtime (:mod:`vtzoo.runtime`)."""
        from vtzoo.precision import resolve_precision
        from vtzoo.runtime import runtime_options

        self.runtime = runtime_options(self.name, backend, compile)
        self.precision = resolve_precision(precision, self.device)
        for network in self.networks():
            self.prepare_network(network)
        return self

    def prepare_network(self, network: torch.nn.Module) -> torch.nn.Module:
        """Prepare a network for the operator's runtime and precision (also extractors built
        later): towers a runtime takes over are converted from the float32 weights first."""
        from vtzoo.runtime import accelerate

        if self.runtime is not None:
            accelerate(network, self.runtime, self.precision)
        if hasattr(network, "apply_precision"):
            network.apply_precision(self.precision)
        return network

    def compute(self) -> contextlib.AbstractContextManager:
        """The context of every forward pass: inference mode and the precision's autocast."""
        from vtzoo.precision import autocast

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast(self.precision, self.device))
        return stack

    # -- tasks --------------------------------------------------------------------------------
    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        raise UnsupportedTask(self.name, VIDEO_EMBEDDING, self.tasks)

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        raise UnsupportedTask(self.name, TEXT_EMBEDDING, self.tasks)

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) scores. Default: cosine of the pooled vectors."""
        if VIDEO_TEXT_SIMILARITY not in self.tasks:
            raise UnsupportedTask(self.name, VIDEO_TEXT_SIMILARITY, self.tasks)
        t = torch.nn.functional.normalize(text.pooled.float(), dim=-1)
        v = torch.nn.functional.normalize(video.pooled.float(), dim=-1)
        return t @ v.T

    def classify(self, videos: VideoInput | Sequence[VideoInput], top_k: int = 5) -> list[list[tuple[str, float]]]:
        raise UnsupportedTask(self.name, VIDEO_CLASSIFICATION, self.tasks)

    # -- benchmarks ---------------------------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """A ready input for ``embed_video`` (or ``classify``) of ``batch_size`` items.

        Benchmarks time the operator on it, so it should be what the model consumes after
        decoding (a preprocessed clip tensor, or a family's feature tensors).
        """
        raise NotImplementedError(f"{type(self).__name__} has no example input for benchmarks")

    def __repr__(self) -> str:
        variant = self.card.variant if self.card is not None else None
        return f"<{type(self).__name__} {self.name}/{variant} on {self.device}>"
