"""The operator shell every model family fills in.

An operator wraps one model family behind four tasks (embed video, embed text, similarity,
classify). Callers hand over what they have (a path, bytes, a decoded clip, or features for
feature-level models); batching, ``torch.inference_mode()``, device and precision are the
operator's job, done once here for every family:

* **options** (:class:`OperatorOptions`, a dataclass a family may extend) are how the operator
  runs: batch size, precision, seed, tokenizer. They are kept apart from the **model config**
  (the family's config dataclass: what the network is). ``vtzoo.create`` sorts keyword
  arguments into the two and refuses unknown ones, naming the nearest valid field;
* :meth:`Operator.build` goes through the one loading path (:func:`~vtzoo.registry.weights.build_model`);
* :attr:`Operator.fingerprint` identifies weights, config and precision for indexes and caches;
* :meth:`Operator.compute` is the context every forward pass runs in, :meth:`Operator.batches`
  the one chunking rule, :attr:`Operator.video_input` the typed input spec a pipeline decodes with,
  :attr:`Operator.tokenizer` the tokenizer from the one resolver.

A family writes ``config.py`` (its config dataclass), ``model.py`` (a
:class:`~vtzoo.modeling.PretrainedModel`), ``convert.py`` (``CONVERTERS``), ``operator.py`` (a
subclass of :class:`Operator` with the tasks it supports), ``golden.py`` (its parity runners) and
its cards; nothing outside its folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Sequence, Union

import torch

from vtzoo.embeddings import Embeddings  # noqa: F401  (re-exported: the operator contract's type)
from vtzoo.errors import ConfigError, InputError, UnsupportedTask, VtzooError, did_you_mean  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.modeling import PretrainedModel
    from vtzoo.registry.cards import WeightCard
    from vtzoo.registry.weights import ResolvedWeights
    from vtzoo.video import VideoClip, VideoInputSpec

VIDEO_EMBEDDING = "video-embedding"
TEXT_EMBEDDING = "text-embedding"
VIDEO_TEXT_SIMILARITY = "video-text-similarity"
VIDEO_CLASSIFICATION = "video-classification"
ALL_TASKS = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY, VIDEO_CLASSIFICATION})
# task -> the method that implements it
TASK_METHODS = {
    VIDEO_EMBEDDING: "embed_video",
    TEXT_EMBEDDING: "embed_text",
    VIDEO_TEXT_SIMILARITY: "similarity",
    VIDEO_CLASSIFICATION: "classify",
}

# What `embed_video` / `classify` accept: a path, raw bytes, a decoded clip (T, C, H, W) as a
# tensor or (T, H, W, C) uint8 numpy array, or a family's feature tensors; or a list of those.
VideoInput = Union[str, os.PathLike, bytes, torch.Tensor, Any]

BACKENDS = ("torch", "openvino")


@dataclass
class OperatorOptions:
    """How an operator runs (not what the network is). Every operator takes these; a family
    extends the dataclass with its own (e.g. COOT's ``level``).

    ``batch_size``: items per forward pass (None: the family's ``default_batch_size``).
    ``precision``: "fp32" | "bf16" | "fp16" | "auto" (see :mod:`vtzoo.precision`).
    ``seed``: seeds ``weights="random"`` of the model and of every sub-model it builds.
    ``tokenizer``: a tokenizer object, folder, ``vocab.txt`` or Hub repo (None: the card's).
    ``backend``: "torch" or "openvino" (the optional runtime, for the towers that support it).
    """

    batch_size: int | None = None
    precision: str = "auto"
    seed: int = 0
    tokenizer: Any = None
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"option batch_size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"option seed must be an integer, got {self.seed!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"option backend {self.backend!r} is not one of {', '.join(BACKENDS)}."
                              f"{did_you_mean(str(self.backend), BACKENDS)}")


def as_text_list(texts: str | Sequence[str]) -> list[str]:
    """``embed_text``'s argument as a non-empty list of strings (a lone string is one text)."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise InputError("embed_text needs at least one text (got an empty list)")
    bad = [type(t).__name__ for t in items if not isinstance(t, str)]
    if bad:
        raise InputError(f"embed_text takes a list of strings, got {', '.join(bad[:3])}")
    return items


def item_source(item: Any) -> str:
    """How an input item is named in provenance and errors: its path, or its kind."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    source = getattr(item, "source", None)
    return str(source) if source is not None else f"<{type(item).__name__}>"


class Operator:
    """One model family behind the common interface.

    Subclasses set ``tasks``, ``model_class`` (and ``options_class`` if they take options of
    their own) and implement the tasks they support; what they do not support raises
    :class:`UnsupportedTask`. Sub-models (feature extractors, text towers) are built in
    :meth:`setup`, from ``self.options`` (their seed included).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for `vtzoo list` and the README table (the paper, in short)
    tasks: ClassVar[frozenset[str]] = frozenset()
    default_variant: ClassVar[str | None] = None
    model_class: ClassVar[type["PretrainedModel"]]
    options_class: ClassVar[type[OperatorOptions]] = OperatorOptions
    default_batch_size: ClassVar[int] = 8
    # "clip" | "bert" | "distilbert" | "auto": what kind of tokenizer the text tower reads
    tokenizer_kind: ClassVar[str | None] = None
    # True for families built from their paper alone (no original code exists to compare with):
    # they prove themselves by hand-computed loss tests and training, not by golden parity cases
    from_paper: ClassVar[bool] = False
    # extra methods a pipeline step may name, e.g. ("features",) for "s3d.features"
    pipeline_methods: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: "PretrainedModel",
        card: "WeightCard | None" = None,
        *,
        options: OperatorOptions | None = None,
        device: str | torch.device = "cpu",
        weights: "ResolvedWeights | None" = None,
    ):
        from vtzoo.precision import resolve_precision

        self.options = options if options is not None else self.options_class()
        self.card = card
        self.device = torch.device(device)
        self.precision = resolve_precision(self.options.precision, self.device)
        self.weights = weights
        self.model = model.to(self.device).eval()
        self.model.apply_precision(self.precision)
        self._tokenizer: Any = None
        self.setup()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        card: "WeightCard | None",
        weights: Any = None,
        *,
        device: str | torch.device = "cpu",
        options: OperatorOptions | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> "Operator":
        """Resolve and load ``weights`` into ``model_class`` (card config + ``config`` overrides)."""
        from vtzoo.registry.weights import build_model

        options = options if options is not None else cls.options_class()
        model, resolved = build_model(cls.model_class, card, weights, overrides=config, seed=options.seed)
        return cls(model, card, options=options, device=device, weights=resolved)

    def setup(self) -> None:
        """Build what the operator needs beside the model (sub-models, feature extractors)."""

    @classmethod
    def option_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls.options_class))

    @classmethod
    def config_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls.model_class.config_class))

    @classmethod
    def split_arguments(cls, arguments: Mapping[str, Any], where: str) -> tuple[OperatorOptions, dict[str, Any]]:
        """Sort ``create``'s keyword arguments into options and config overrides.

        An argument that is neither fails here, before any weight is read, naming the nearest
        valid field of either kind.
        """
        options, config = {}, {}
        option_names, config_names = cls.option_fields(), cls.config_fields()
        for key, value in arguments.items():
            if key in option_names:
                options[key] = value
            elif key in config_names:
                config[key] = value
            else:
                hint = did_you_mean(key, option_names + config_names, cutoff=0.6)
                raise ConfigError(
                    f"{where}: unknown option or config field {key!r}.{hint} Options: {', '.join(option_names)}; "
                    f"config fields: {', '.join(config_names)}"
                )
        return cls.options_class(**options), config

    # -- what the operator is -----------------------------------------------------------------
    @property
    def config(self) -> Any:
        """The model config (the family's config dataclass)."""
        return self.model.config

    @property
    def variant(self) -> str | None:
        return self.card.variant if self.card is not None else None

    @property
    def preprocessing(self) -> Mapping[str, Any]:
        """The card's input preparation (frames, fps, resize, tokenizer, ...); empty without a card."""
        return self.card.preprocessing if self.card is not None else {}

    @property
    def batch_size(self) -> int:
        return self.options.batch_size or self.default_batch_size

    @property
    def fingerprint(self) -> str:
        """Identifies what this operator computes: name, variant, weights (card revision, file
        sha256 or ``random:<seed>``), a digest of the model config, the precision and backend.
        Indexes and caches key their contents by it."""
        weights = self.weights.identity(self.options.seed) if self.weights is not None else f"random:{self.options.seed}"
        config = json.dumps(dataclasses.asdict(self.config), sort_keys=True, default=str)
        digest = hashlib.sha256(config.encode()).hexdigest()[:12]
        backend = "" if self.options.backend == "torch" else f"|{self.options.backend}"
        return f"{self.name}/{self.variant or '-'}|{weights}|config:{digest}|{self.precision}{backend}"

    # -- running ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def compute(self) -> Iterator[None]:
        """The context of every forward pass: no autograd, and the operator's precision."""
        from vtzoo.precision import autocast

        with torch.inference_mode(), autocast(self.precision, self.device):
            yield

    def batches(self, count: int, size: int | None = None) -> Iterator[slice]:
        """Slices of ``range(count)`` of ``size`` (default: the batch size) items each."""
        size = size or self.batch_size
        for start in range(0, count, size):
            yield slice(start, min(start + size, count))

    def map_batches(self, fn: Callable[..., Any], *tensors: torch.Tensor, size: int | None = None) -> list[Any]:
        """``fn`` over aligned batches of ``tensors`` (moved to the device), under :meth:`compute`."""
        results = []
        with self.compute():
            for part in self.batches(tensors[0].shape[0], size):
                results.append(fn(*(t[part].to(self.device) for t in tensors)))
        return results

    # -- input --------------------------------------------------------------------------------
    @property
    def video_input(self) -> "VideoInputSpec | None":
        """How this operator samples and preprocesses a video (None: it reads features only)."""
        return None

    def load_clip(self, source: Any, start: float | None = None, end: float | None = None) -> "VideoClip":
        """Decode ``source`` with this operator's input spec; a clip decoded for another operator
        is refused (see :meth:`VideoInputSpec.check`)."""
        from vtzoo.video import VideoClip

        spec = self.video_input
        if spec is None:
            raise UnsupportedTask(self.name, "video decoding (it reads precomputed features)", self.tasks)
        if isinstance(source, VideoClip):
            return spec.check(source, self.name)
        return spec.load(source, start=start, end=end)

    @property
    def tokenizer(self) -> Any:
        """The text tokenizer: ``tokenizer=`` given to ``create``, else the card's (one resolver)."""
        if self._tokenizer is None:
            if self.tokenizer_kind is None:
                raise UnsupportedTask(self.name, TEXT_EMBEDDING, self.tasks)
            from vtzoo.tokenizers import resolve_tokenizer

            self._tokenizer = resolve_tokenizer(
                self.options.tokenizer, self.preprocessing.get("tokenizer"), kind=self.tokenizer_kind,
                where=f"{self.name}/{self.variant or '-'}",
            )
        return self._tokenizer

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

    # -- benchmarks and conformance -------------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """A ready input for ``embed_video`` (or ``classify``) of ``batch_size`` items.

        Benchmarks time the operator on it, so it should be what the model consumes after
        decoding (a preprocessed clip tensor, or a family's feature tensors).
        """
        raise NotImplementedError(f"{type(self).__name__} has no example input for benchmarks")

    @classmethod
    def tiny_config(cls, card: "WeightCard | None") -> dict[str, Any]:
        """Config overrides that shrink ``card``'s architecture to a few layers of a few channels:
        the same code paths, in milliseconds. Used by the conformance tests, smoke benchmarks and
        the ``synthetic-tiny`` training recipes."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}/{self.variant} on {self.device}, {self.precision}>"


def input_provenance(source: str, count: int = 1) -> list[dict[str, Any]]:
    """Provenance of items that were not decoded here (tensors, features): the contract's keys,
    with ``source`` saying what they were."""
    record = {"source": source, "backend": None, "fallback": None, "indices": None, "timestamps": None, "rotation": 0}
    return [dict(record) for _ in range(count)]


def video_items(videos: Any) -> list[Any]:
    """``embed_video``'s argument as a list of items: a list as it is, a batch tensor (5-d) split,
    anything else is one video."""
    if isinstance(videos, (list, tuple)):
        items = list(videos)
    elif isinstance(videos, torch.Tensor) and videos.dim() == 5:
        items = list(videos)
    else:
        items = [videos]
    if not items:
        raise InputError("embed_video got an empty list of videos")
    return items

