"""The ``mdmmt`` operator: MDMMT and MMT retrieval over expert features, experts included.

``embed_video`` accepts, per video, any of:

* a path / bytes / decoded frames: the card's experts (the ``clip_frames``, ``vggish`` and
  ``ircsn152`` operators) extract the features first (MDMMT variants only; a video without an
  audio track has a missing audio expert; decoded frames carry no audio and are taken as sampled
  at each expert's rate unless ``expert_config={"CLIP": {"source_fps": 25}, ...}`` says theirs);
* a mapping ``expert name -> ExpertSequence(features (n, dim), timings (n, 2) or None)`` of
  precomputed features (absent experts are missing experts), optionally with ``"video": source``
  to extract only the experts not given;
* an already collated :class:`~vtzoo.operators.mdmmt.collate.ExpertBatch`.

Embeddings: ``tokens`` (N, M, D) are the per-expert unit vectors; video ``mask`` (N, M) marks the
experts present; text ``extras["weights"]`` (N, M) are the mixture weights. ``pooled`` is the
concatenation (weighted on the text side), so a plain dot product of pooled vectors equals
MDMMT's score (and MMT's with ``keep_missing_modalities=True``). ``similarity`` computes the
original's score in every configuration.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from vtzoo.errors import ConfigError, did_you_mean
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    InputError,
    Operator,
    OperatorOptions,
    VideoInput,
    input_provenance,
    item_source,
)
from vtzoo.operators.mdmmt.collate import ExpertBatch, ExpertSequence, collate
from vtzoo.operators.mdmmt.model import MdmmtModel, average_caption_similarities
from vtzoo.operators.mdmmt.text import mdmmt_tokenize, mmt_tokenize
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import WeightsError

# expert i (in the config's order) drawn with weights="random" is seeded seed + 1 + i
EXPERT_SEED_OFFSET = 1


@dataclass
class MdmmtOptions(OperatorOptions):
    """``expert_weights``: one weights spec for every expert, or ``{expert name: spec}`` (default:
    the expert cards'; untrained, seeded, with ``weights="random"``). ``expert_config``:
    ``{expert name: {field: value}}``, ``vtzoo.create`` arguments of that expert's operator
    (e.g. ``fps``, ``layers``, ``batch_size``). ``extractors``: ready ``{expert name: operator}``."""

    expert_weights: Any = None
    expert_config: Mapping[str, Mapping[str, Any]] | None = None
    extractors: Mapping[str, Any] | None = None


@register_operator("mdmmt")
class MdmmtOperator(Operator):
    """MDMMT (default) or MMT (``architecture: mmt`` variants) behind the common interface."""

    summary = "multi-modal transformer over CLIP, audio and motion experts (Dzabraev et al. 2021), with MMT (Gabeur et al. 2020)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "mdmmt-3mod"
    model_class = MdmmtModel
    options_class = MdmmtOptions
    default_batch_size = 64
    tokenizer_kind = "bert"

    def setup(self) -> None:
        self._experts = dict(self.options.extractors) if self.options.extractors is not None else None
        self._check_expert_config()

    def _check_expert_config(self) -> None:
        """``expert_config`` names experts of the card and fields their operators take (checked
        now, though the experts are built on the first raw video)."""
        from vtzoo.registry.operators import get_operator_class, split_name

        cards = self.preprocessing.get("experts") or {}
        for name, arguments in (self.options.expert_config or {}).items():
            if name not in cards:
                raise ConfigError(f"{self.name}: expert_config names {name!r}, which is not an expert of this card "
                                  f"(experts: {', '.join(cards) or 'none'}).{did_you_mean(name, cards)}")  # fmt: skip
            operator, _ = split_name(cards[name], None)
            get_operator_class(operator).split_arguments(dict(arguments), where=f"{self.name} expert_config[{name!r}]")

    # -- text -------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str] | str) -> dict[str, torch.Tensor]:
        """The text BERT's inputs, exactly as the original prepares captions."""
        max_length = int(self.config.text_max_length)
        if self.config.architecture == "mmt":
            return mmt_tokenize(self.tokenizer, texts, max_length)
        return mdmmt_tokenize(self.tokenizer, texts, max_length, dot=self.config.add_dot)

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        enc = self.tokenize(texts)
        outs = self.map_batches(self.model.encode_text, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        tokens = torch.cat([out.expert_embeddings.float().cpu() for out in outs])
        weights = torch.cat([out.weights.float().cpu() for out in outs])
        return Embeddings(pooled=(tokens * weights[..., None]).flatten(1), tokens=tokens, extras={"weights": weights})

    # -- video ------------------------------------------------------------------------------------
    @property
    def experts(self) -> dict[str, Any]:
        """The expert operators (built on first use from the card's ``experts`` section)."""
        if self._experts is None:
            self._experts = self._build_experts()
        return self._experts

    def _build_experts(self) -> dict[str, Any]:
        cards = self.preprocessing.get("experts")
        if not cards:
            raise InputError(
                f"{self.card.name if self.card else 'this model'} has no bundled feature extractors for its experts "
                f"({', '.join(self.config.expert_names)}): pass precomputed features "
                "{expert: ExpertSequence(features, timings)} to embed_video"
            )
        return {name: self._build_expert(name, cards[name], index)
                for index, name in enumerate(self.config.expert_names) if name in cards}  # fmt: skip

    def _build_expert(self, name: str, card_name: str, index: int) -> Operator:
        import vtzoo

        given = self.options.expert_weights
        weights = given.get(name) if isinstance(given, Mapping) else given
        if weights is None and self.weights is not None and self.weights.kind == "random":
            weights = "random"
        arguments = {"precision": self.options.precision, **dict((self.options.expert_config or {}).get(name, {}))}
        try:
            return vtzoo.create(card_name, weights=weights, device=self.device, seed=self.options.seed + EXPERT_SEED_OFFSET + index,
                                **arguments)  # fmt: skip
        except WeightsError as exc:
            if weights is not None:
                raise
            raise WeightsError(
                f"expert {name!r} ({card_name}) has no weights to download: pass expert_weights={{{name!r}: <checkpoint "
                f"file>}} (see the card {card_name} for the original release), or 'random' for an untrained expert ({exc})"
            ) from None

    def _extract(self, experts: Mapping[str, Any], video: Any) -> tuple[dict[str, ExpertSequence], dict[str, Any]]:
        """Every expert on one video; a missing audio track (or too short a one) leaves it out."""
        from vtzoo.operators.mdmmt.experts.vggish.audio import AudioTooShort

        found: dict[str, ExpertSequence] = {}
        records: dict[str, Any] = {}
        for name, expert in experts.items():
            try:
                seq, records[name] = expert.extract(video)
            except AudioTooShort as exc:
                warnings.warn(f"expert {name!r}: {exc}; treated as a missing expert", stacklevel=3)
                seq = None
            if seq is not None and len(seq.features) > 0:
                found[name] = seq
        return found, records

    def _features_of(self, item: Any) -> tuple[Mapping[str, Any], dict[str, Any]]:
        """One video item -> its expert sequences and provenance."""
        if isinstance(item, Mapping):
            given = {k: v for k, v in item.items() if k != "video"}
            if "video" not in item:
                return given, input_provenance("<features>")[0]
            todo = {n: e for n, e in self.experts.items() if given.get(n) is None}
            found, records = self._extract(todo, item["video"])
            return {**found, **{k: v for k, v in given.items() if v is not None}}, _provenance(item["video"], records)
        found, records = self._extract(self.experts, item)
        return found, _provenance(item, records)

    def collate(self, videos: Sequence[Mapping[str, Any]]) -> ExpertBatch:
        """Per-video expert sequences -> the model's padded inputs (see ``collate.py``)."""
        return collate(videos, self.config.experts, self.config.architecture)

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        if isinstance(videos, ExpertBatch):
            batch = videos
            provenance = input_provenance("<ExpertBatch>", next(iter(batch.features.values())).shape[0])
        else:
            items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
            if not items:
                raise InputError("embed_video needs at least one video (got an empty list)")
            features, provenance = zip(*(self._features_of(item) for item in items))
            batch = self.collate(features)
        outs, available = [], []
        size = next(iter(batch.features.values())).shape[0]
        with self.compute():
            for part in self.batches(size):
                take = lambda d: None if d is None else {k: v[part].to(self.device) for k, v in d.items()}  # noqa: E731
                out = self.model.encode_video(take(batch.features), take(batch.features_t), take(batch.features_ind),
                                              take(batch.features_maxpool))  # fmt: skip
                outs.append(out.expert_embeddings.float().cpu())
                available.append(out.available.cpu())
        tokens = torch.cat(outs)
        return Embeddings(pooled=tokens.flatten(1), tokens=tokens, mask=torch.cat(available).long(),
                          extras={"missing": batch.missing, "provenance": list(provenance)})  # fmt: skip

    # -- scoring ----------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings, captions_per_video: int | None = None) -> torch.Tensor:
        """(n_text, n_video) scores as the original computes them.

        ``captions_per_video=K`` averages the scores of each run of K consecutive captions (MMT's
        training-time merge, rows b*K .. b*K+K-1 belong to video b): (n_text / K, n_video).
        """
        for what, emb in (("text", text), ("video", video)):
            if emb.tokens is None or emb.tokens.dim() != 3:
                raise InputError(f"the {what} Embeddings carry no per-expert tokens (use this operator's embed_{what})")
        if "weights" not in text.extras:
            raise InputError("the text Embeddings carry no expert weights (use this operator's embed_text)")
        available = video.mask if video.mask is not None else torch.ones(video.tokens.shape[:2])
        with self.compute():
            sims = self.model.similarity(
                text.tokens.to(self.device).float(),
                text.extras["weights"].to(self.device).float(),
                video.tokens.to(self.device).float(),
                available.to(self.device).float(),
            ).float().cpu()
        return sims if not captions_per_video else average_caption_similarities(sims, int(captions_per_video))

    # -- benchmarks and conformance ---------------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> ExpertBatch:
        """Random features filling every expert's tokens (``num_frames`` tokens if given)."""
        generator = torch.Generator().manual_seed(0)
        videos = []
        for _ in range(batch_size):
            video = {}
            for e in self.config.experts:
                n = int(num_frames or e["max_tok"])
                starts = torch.arange(n, dtype=torch.float64)
                video[e["name"]] = ExpertSequence(
                    torch.randn(n, int(e["dim"]), generator=generator), torch.stack([starts, starts + 1], 1)
                )
            videos.append(video)
        return self.collate(videos)

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """One-layer 16-wide video and text transformers (the real BERT vocabulary size), 4 tokens per expert."""
        experts = [{**e, "max_tok": 4} for e in (card.config.get("experts") if card is not None else None) or []]
        text = {"vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 32, "max_position_embeddings": 64}  # fmt: skip
        tiny = {"same_dim": 16, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 32, "text_bert": text}  # fmt: skip
        return {**tiny, "experts": experts} if experts else tiny


def _provenance(video: Any, records: Mapping[str, Any]) -> dict[str, Any]:
    """One raw video's provenance: its source, the first expert's decoder, every expert's record."""
    record = input_provenance(item_source(video))[0]
    first = next((r for r in records.values() if r.get("backend")), None)
    if first is not None:
        record.update(backend=first["backend"], fallback=first.get("fallback"), rotation=first.get("rotation", 0))
    return {**record, "experts": dict(records)}
