"""The ``mdmmt`` operator: MDMMT and MMT retrieval over expert features, experts included.

``embed_video`` accepts, per video, any of:

* a path / bytes / decoded frames: the bundled experts (CLIP frames, VGGish, irCSN-152) extract
  the features first (MDMMT variants only; a video without an audio track has a missing audio
  expert; decoded frames carry no audio and need their frame rate, e.g.
  ``expert_config={"CLIP": {"source_fps": 25}, "VIDEO": {"source_fps": 25}}``);
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

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from vtzoo.operators.base import TEXT_EMBEDDING, VIDEO_EMBEDDING, VIDEO_TEXT_SIMILARITY, Embeddings, Operator, VideoInput
from vtzoo.operators.mdmmt.collate import ExpertBatch, ExpertSequence, collate
from vtzoo.operators.mdmmt.model import MdmmtModel, average_caption_similarities
from vtzoo.operators.mdmmt.text import mdmmt_tokenize, mmt_tokenize
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import build_model

_VIDEO_BATCH = 64
_TEXT_BATCH = 256


@register_operator("mdmmt")
class MdmmtOperator(Operator):
    """MDMMT (default) or MMT (``architecture: mmt`` variants) behind the common interface.

    Extra ``build`` options: ``tokenizer`` (a tokenizer object, a folder or a Hub repo; default: the
    card's), ``expert_weights`` (one spec for every expert, or ``{expert name: spec}``),
    ``expert_config`` (``{expert name: {field: value}}`` overriding the expert cards, e.g. ``fps``)
    and ``extractors`` (ready ``{expert name: callable}`` extractors).
    """

    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "mdmmt-3mod"

    def __init__(
        self,
        model: MdmmtModel,
        card: Any = None,
        device: str | torch.device = "cpu",
        tokenizer: Any = None,
        extractors: Mapping[str, Any] | None = None,
        expert_weights: Any = None,
        expert_config: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        super().__init__(model, card, device)
        self.config = model.config
        self.preprocessing: dict[str, Any] = dict(card.preprocessing) if card is not None else {}
        self._tokenizer = tokenizer
        self._extractors = dict(extractors) if extractors is not None else None
        self._expert_weights = expert_weights
        self._expert_config = dict(expert_config or {})

    @classmethod
    def build(cls, card: Any, weights: Any = None, device: str | torch.device = "cpu", **config: Any) -> Operator:
        if card is not None and "expert" in card.config:
            from vtzoo.operators.mdmmt.experts.operator import ExpertOperator

            return ExpertOperator.build(card, weights, device, **config)
        extras = {k: config.pop(k) for k in ("tokenizer", "extractors", "expert_weights", "expert_config") if k in config}
        model, _ = build_model(MdmmtModel, card, weights, overrides=config)
        return cls(model, card, device, **extras)

    # -- text -------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None or isinstance(self._tokenizer, (str, Path)):
            from transformers import AutoTokenizer

            spec = self._tokenizer or self.preprocessing.get("tokenizer", {}).get("repo")
            if not spec:
                raise RuntimeError("no tokenizer: pass tokenizer=<path or repo> or set the card's preprocessing.tokenizer")
            revision = None if self._tokenizer else self.preprocessing.get("tokenizer", {}).get("revision")
            self._tokenizer = AutoTokenizer.from_pretrained(str(spec), revision=revision)
        return self._tokenizer

    def tokenize(self, texts: Sequence[str] | str) -> dict[str, torch.Tensor]:
        """The text BERT's inputs, exactly as the original prepares captions."""
        max_length = int(self.config.text_max_length)
        if self.config.architecture == "mmt":
            return mmt_tokenize(self.tokenizer, texts, max_length)
        return mdmmt_tokenize(self.tokenizer, texts, max_length, dot=self.config.add_dot)

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        enc = self.tokenize(texts)
        experts, weights = [], []
        with torch.inference_mode():
            for start in range(0, enc["input_ids"].shape[0], _TEXT_BATCH):
                part = {k: v[start : start + _TEXT_BATCH].to(self.device) for k, v in enc.items()}
                out = self.model.encode_text(part["input_ids"], part["attention_mask"], part["token_type_ids"])
                experts.append(out.expert_embeddings)
                weights.append(out.weights)
        tokens, w = torch.cat(experts), torch.cat(weights)
        return Embeddings(pooled=(tokens * w[..., None]).flatten(1), tokens=tokens, extras={"weights": w})

    # -- video ------------------------------------------------------------------------------------
    @property
    def extractors(self) -> dict[str, Any]:
        """The feature extractors (built on first use from the card's ``experts`` section)."""
        if self._extractors is None:
            self._extractors = self._build_extractors()
        return self._extractors

    def _build_extractors(self) -> dict[str, Any]:
        from vtzoo.operators.mdmmt.experts.build import build_expert
        from vtzoo.registry.cards import get_card

        spec = self.preprocessing.get("experts")
        if not spec:
            raise ValueError(
                f"{self.card.name if self.card else 'this model'} has no bundled feature extractors for its experts "
                f"({', '.join(self.config.expert_names)}): pass precomputed features "
                "{expert: ExpertSequence(features, timings)} to embed_video"
            )
        experts = {}
        for name in self.config.expert_names:
            if name not in spec:
                continue
            card = get_card(f"mdmmt/{spec[name]}")
            weights = self._expert_weights.get(name) if isinstance(self._expert_weights, Mapping) else self._expert_weights
            if weights is None and card.hub is not None:
                weights = f"hf://{card.hub.repo}@{card.hub.revision}"
            cfg = {k: v for k, v in card.config.items() if k not in ("expert", "name")}
            cfg.update(self._expert_config.get(name, {}))
            experts[name] = build_expert(card.config["expert"], name, weights, cfg, self.device)
            self.prepare_network(getattr(experts[name], "model", None) or experts[name].towers)
        return experts

    def _features_of(self, item: Any) -> Mapping[str, Any]:
        from vtzoo.operators.mdmmt.experts.extractors import run_experts

        if isinstance(item, Mapping):
            given = {k: v for k, v in item.items() if k != "video"}
            if "video" not in item:
                return given
            todo = {n: e for n, e in self.extractors.items() if given.get(n) is None}
            return {**run_experts(todo, item["video"]), **{k: v for k, v in given.items() if v is not None}}
        return run_experts(self.extractors, item)

    def collate(self, videos: Sequence[Mapping[str, Any]]) -> ExpertBatch:
        """Per-video expert sequences -> the model's padded inputs (see ``collate.py``)."""
        return collate(videos, self.config.experts, self.config.architecture)

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        if isinstance(videos, ExpertBatch):
            batch = videos
        else:
            items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
            if not items:
                raise ValueError("embed_video needs at least one video (got an empty list)")
            batch = self.collate([self._features_of(item) for item in items])
        outs, avail = [], []
        size = next(iter(batch.features.values())).shape[0]
        with torch.inference_mode():
            for start in range(0, size, _VIDEO_BATCH):
                part = lambda d: None if d is None else {k: v[start : start + _VIDEO_BATCH].to(self.device) for k, v in d.items()}  # noqa: E731
                out = self.model.encode_video(
                    part(batch.features), part(batch.features_t), part(batch.features_ind), part(batch.features_maxpool)
                )
                outs.append(out.expert_embeddings)
                avail.append(out.available)
        tokens = torch.cat(outs)
        mask = torch.cat(avail).long()
        return Embeddings(pooled=tokens.flatten(1), tokens=tokens, mask=mask, extras={"missing": batch.missing})

    # -- scoring ----------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings, captions_per_video: int | None = None) -> torch.Tensor:
        """(n_text, n_video) scores as the original computes them.

        ``captions_per_video=K`` averages the scores of each run of K consecutive captions (MMT's
        training-time merge, rows b*K .. b*K+K-1 belong to video b): (n_text / K, n_video).
        """
        for what, emb in (("text", text), ("video", video)):
            if emb.tokens is None or emb.tokens.dim() != 3:
                raise ValueError(f"the {what} Embeddings carry no per-expert tokens (use this operator's embed_{what})")
        if "weights" not in text.extras:
            raise ValueError("the text Embeddings carry no expert weights (use this operator's embed_text)")
        available = video.mask if video.mask is not None else torch.ones(video.tokens.shape[:2])
        with torch.inference_mode():
            sims = self.model.similarity(
                text.tokens.to(self.device).float(),
                text.extras["weights"].to(self.device).float(),
                video.tokens.to(self.device).float(),
                available.to(self.device).float(),
            )
        return sims if not captions_per_video else average_caption_similarities(sims, int(captions_per_video))

    # -- benchmarks -------------------------------------------------------------------------------
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
