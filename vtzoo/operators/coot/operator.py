"""The ``coot`` operator: videos and paragraphs -> COOT embeddings at two levels.

* ``embed_video(videos, segments=None)``: ``pooled`` = the video embedding (768-d), ``tokens`` =
  the clip embeddings (384-d) with ``mask`` (1 = real clip); ``extras["context"]`` = the video
  context (the local net on the whole video). A video is a path / bytes / decoded frames /
  :class:`~vtzoo.video.VideoClip` (S3D features at 16 fps, YouCook2 setting: needs S3D
  weights), a ``(T, D)`` feature tensor, or :class:`CootVideoFeatures` (any feature size the
  variant takes, e.g. ActivityNet's 2048-d). Clips come from ``segments`` (seconds, one list
  per video), else the video is cut into ``clip_seconds`` pieces (10 s; vtzoo's choice: the
  original always uses annotated segments).
* ``embed_text(texts)``: one row per item. An item is a paragraph: a list of sentences
  (``list[str]``), or one string (a paragraph of one sentence); ``pooled`` = paragraph embedding,
  ``tokens`` = sentence embeddings. Text goes through BERT as the original's
  ``precompute_text.py`` does; precomputed :class:`CootTextFeatures` are accepted too.
* ``similarity(text, video, level="video")``: cosine, (n_text, n_video). ``level="clip"``:
  every sentence against every clip, rows/columns in item order (the masks' real positions).

``create("coot", ..., level="clip")`` gives a clip-level operator for pipelines: each video
item is ONE clip and each text item ONE sentence; ``pooled`` is then the clip / sentence
embedding. ``pad_to`` reproduces the original's batch padding of the global nets (see docs).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from vtzoo.backbones.s3d.features import COOT_WINDOWING, S3DFeatureExtractor, S3DWindowingOptions
from vtzoo.errors import ConfigError
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    OperatorOptions,
    input_provenance,
    item_source,
)
from vtzoo.operators.coot.inputs import CootTextFeatures, CootVideoFeatures, split_seconds, text_batch, video_batch
from vtzoo.operators.coot.model import CootInputError, CootLevelOutput, CootModel
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import WeightsError

LEVELS = ("video", "clip")
S3D_FEATURE_DIM = 512  # HowTo100M S3D's video_embedding: what the raw-video path gives
# sub-models drawn with weights="random" are seeded apart from the model (seed + offset)
S3D_SEED_OFFSET, TEXT_SEED_OFFSET = 1, 2


@dataclass
class CootOptions(S3DWindowingOptions, OperatorOptions):
    """How COOT runs. ``level``: "video" (video/paragraph, default) or "clip" (each item one
    clip / sentence). ``clip_seconds``: clip length when a raw video comes without segments.
    ``pad_to``: pad the global nets' inputs to this many clips / sentences (the original's batch).

    ``text_model``: a ``transformers`` BertModel, a local BERT folder, a Hub repo
    (``org/name[@revision]``) or a mapping of ``BertConfig`` fields (an untrained BERT of that
    size); default the card's (``bert-base-uncased``; untrained, of its size, with
    ``weights="random"``). ``s3d_weights``: ``s3d_howto100m.pth``, an S3D module or "random";
    default none (raw video refused), an untrained S3D with ``weights="random"``. The windowing
    fields override the card's (how raw video becomes S3D features).
    """

    level: str = "video"
    clip_seconds: float = 10.0
    pad_to: int | None = None
    text_model: Any = None
    s3d_weights: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.level not in LEVELS:
            raise ConfigError(f"coot: option level must be one of {LEVELS}, got {self.level!r}")


@register_operator("coot")
class CootOperator(Operator):
    summary = "hierarchical clip/video and sentence/paragraph transformers (Ging et al. 2020)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "youcook2-s3d"
    model_class = CootModel
    options_class = CootOptions
    default_batch_size = 64
    tokenizer_kind = "bert"

    def setup(self) -> None:
        self.level = self.options.level
        self.windowing = self.options.windowing(self.preprocessing, base=COOT_WINDOWING)
        random = self.weights is not None and self.weights.kind == "random"
        self.s3d = self._s3d(random) if self.config.video_feature_dim == S3D_FEATURE_DIM else None
        if self.s3d is not None:
            self.prepare_network(self.s3d)
        self.text_model = self._text_model(random)
        self._text_encoder = None
        self._video_extractor = None

    def networks(self) -> list:
        return [self.model] + ([self.s3d] if self.s3d is not None else []) + (
            [self._text_encoder] if self._text_encoder is not None else [])

    # -- sub-models -----------------------------------------------------------------------------
    def _s3d(self, random: bool) -> torch.nn.Module | None:
        """HowTo100M S3D for raw video: given, loaded through the one loading path, or seeded random."""
        from vtzoo.backbones.s3d import S3D
        from vtzoo.registry.weights import build_model

        spec = self.options.s3d_weights
        if isinstance(spec, torch.nn.Module):
            return spec.to(self.device).eval()
        if spec is None and not random:
            return None
        s3d, _ = build_model(S3D, None, spec or "random", seed=self.options.seed + S3D_SEED_OFFSET)
        return s3d.to(self.device).eval()

    def _text_model(self, random: bool) -> torch.nn.Module | None:
        """The BERT text tower, when known locally (None: the card's, fetched on first use)."""
        from vtzoo.operators.coot.text import local_bert, untrained_bert

        spec = self.options.text_model
        if isinstance(spec, torch.nn.Module):
            return spec.to(self.device).eval()
        if isinstance(spec, dict) or (spec is None and random):
            return untrained_bert(spec, self.options.seed + TEXT_SEED_OFFSET).to(self.device)
        if isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir():
            if self.options.tokenizer is None:  # a BERT folder carries its tokenizer
                self.options = dataclasses.replace(self.options, tokenizer=str(spec))
            return local_bert(spec).to(self.device)
        return None

    @property
    def text_encoder(self):
        """BERT paragraph encoder (:class:`~vtzoo.operators.coot.text.BertParagraphEncoder`)."""
        if self._text_encoder is None:
            from vtzoo.operators.coot.text import BertParagraphEncoder

            if self.text_model is None:
                self.text_model = self._hub_text_model().to(self.device)
            encoder = BertParagraphEncoder(self.text_model, self.tokenizer)
            if encoder.feature_dim != self.config.text_feature_dim:
                raise CootInputError(f"the text model gives {encoder.feature_dim}-d features (last two layers), but "
                                     f"this COOT takes {self.config.text_feature_dim}")  # fmt: skip
            self._text_encoder = self.prepare_network(encoder)
        return self._text_encoder

    def _hub_text_model(self) -> torch.nn.Module:
        from vtzoo.operators.coot.text import hub_bert

        spec = self.options.text_model
        if isinstance(spec, str):
            repo, _, revision = spec.partition("@")
            return hub_bert(repo, revision or None)
        card = self.preprocessing.get("text_model")
        if not isinstance(card, dict) or not card.get("repo"):
            raise WeightsError("coot: no text model given and the card names none; pass text_model=<BertModel | folder>")
        return hub_bert(card["repo"], card.get("revision"))

    @property
    def video_extractor(self) -> S3DFeatureExtractor:
        """HowTo100M S3D windows -> per-second features (YouCook2 setting)."""
        if self._video_extractor is None:
            if self.s3d is None:
                raise WeightsError(
                    "coot: raw video needs the HowTo100M S3D weights: create(..., s3d_weights='s3d_howto100m.pth'); "
                    "or pass precomputed features (CootVideoFeatures / a (T, D) tensor)"
                )
            self._video_extractor = S3DFeatureExtractor(self.s3d, self.windowing, self.options.s3d_batch_size)
        return self._video_extractor

    @property
    def video_input(self):
        return self.windowing.input_spec() if self.s3d is not None else None

    # -- inputs ---------------------------------------------------------------------------------
    def video_features(self, video: Any, segments: Sequence[tuple[float, float]] | None = None) -> CootVideoFeatures:
        """One video (any accepted form) -> :class:`CootVideoFeatures` with its clips."""
        return self._video_item(video, segments)[0]

    def _video_item(self, video: Any, segments: Sequence[tuple[float, float]] | None) -> tuple[CootVideoFeatures, dict]:
        cfg = self.config
        if isinstance(video, (CootVideoFeatures, dict)):
            if segments is not None:
                raise CootInputError("segments= applies to raw video or plain feature tensors; CootVideoFeatures "
                                     "already carry their clips")  # fmt: skip
            return CootVideoFeatures.coerce(video), input_provenance("<features>")[0]
        if isinstance(video, torch.Tensor) and video.dim() == 2:
            if video.shape[-1] != cfg.video_feature_dim:
                raise CootInputError(f"video features must be (T, {cfg.video_feature_dim}), got {tuple(video.shape)}",
                                     "<tensor>")  # fmt: skip
            if segments is None:
                return CootVideoFeatures(video), input_provenance("<features>")[0]
            duration = video.shape[0] / self.windowing.features_per_second
            return self._with_clips(video, duration, segments), input_provenance("<features>")[0]
        if not _is_raw_video(video):
            raise CootInputError(f"coot cannot read a video from {type(video).__name__}")
        if cfg.video_feature_dim != S3D_FEATURE_DIM:
            raise CootInputError(f"raw video gives {S3D_FEATURE_DIM}-d S3D features, but this COOT variant takes "
                                 f"{cfg.video_feature_dim}-d features: pass them as CootVideoFeatures")  # fmt: skip
        result = self.video_extractor(self.load_clip(video) if _is_clip(video) else video)
        provenance = {**input_provenance(item_source(video))[0], **result.provenance}
        if self.level == "clip":
            return CootVideoFeatures(result.features), provenance  # the whole item is one clip
        return self._with_clips(result.features, result.duration, segments), provenance

    def _with_clips(self, features: torch.Tensor, duration: float, segments) -> CootVideoFeatures:
        cfg = self.config
        segments = split_seconds(duration, self.options.clip_seconds) if segments is None else segments
        return CootVideoFeatures.from_seconds(features, duration, segments, cfg.add_stop_frame, cfg.expand_segments)

    def text_features(self, paragraph: Any) -> CootTextFeatures:
        """One text item: a paragraph (list of sentences), one sentence, or :class:`CootTextFeatures`."""
        if isinstance(paragraph, (CootTextFeatures, dict)):
            return CootTextFeatures.coerce(paragraph)
        if isinstance(paragraph, str):
            paragraph = [paragraph]
        if not isinstance(paragraph, (list, tuple)) or not all(isinstance(s, str) for s in paragraph):
            raise CootInputError(f"a paragraph is a list of sentences (str), got {type(paragraph).__name__}")
        if len(paragraph) == 0:
            raise CootInputError("a paragraph needs at least one sentence (got zero)")
        with self.compute():
            return self.text_encoder(paragraph)

    def _video_items(self, videos: Any) -> list[Any]:
        if isinstance(videos, (list, tuple)):
            return list(videos)
        if isinstance(videos, torch.Tensor) and videos.dim() == 3 and videos.shape[-1] == self.config.video_feature_dim:
            return list(videos)  # (B, T, D) features
        return [videos]

    @staticmethod
    def _text_items(texts: Any) -> list[Any]:
        """One item per entry: ``embed_text(n strings)`` gives n rows (a paragraph is a list)."""
        if isinstance(texts, (str, CootTextFeatures, dict)):
            return [texts]
        return list(texts)

    # -- encoding -------------------------------------------------------------------------------
    def _run(self, level: str, items: list[Any]) -> list[tuple[CootLevelOutput, list[int]]]:
        """Encode in batches; without ``pad_to``, items are grouped by clip/sentence count so the
        global net sees no padding and an item's embedding does not depend on its batch."""
        counts = [min(self._count(level, i), self.max_clips) for i in items]
        groups: dict[int, list[int]] = {}
        for index, count in enumerate(counts):
            groups.setdefault(count if self.options.pad_to is None else 0, []).append(index)
        results = []
        cfg = self.config
        with self.compute():
            for members in groups.values():
                for part in self.batches(len(members)):
                    chunk = members[part]
                    chosen = [items[i] for i in chunk]
                    if level == "video":
                        batch = video_batch(chosen, cfg.video_feature_dim, cfg.max_frames, self.max_clips)
                        encode = self.model.encode_video
                    else:
                        batch = text_batch(chosen, cfg.text_feature_dim, self.max_clips)
                        encode = self.model.encode_text
                    out = encode(**{k: v.to(self.device) for k, v in batch.items()}, pad_to=self.options.pad_to)
                    results.append((out, chunk))
        return results

    @property
    def max_clips(self) -> int:
        """Clips / sentences encoded per item: the config's ``max_clips``, at most the global nets' positions."""
        table = min(self.config.net_video_global.positional_max_len, self.config.net_text_global.positional_max_len)
        return table if self.config.max_clips is None else min(self.config.max_clips, table)

    @staticmethod
    def _count(level: str, item: Any) -> int:
        return len(item.clips) if level == "video" else len(item.sentence_lengths)

    def _embeddings(self, level: str, items: list[Any]) -> Embeddings:
        if not items:
            raise CootInputError(f"embed_{'video' if level == 'video' else 'text'} needs at least one item")
        n = len(items)
        if self.level == "clip":
            rows: list[torch.Tensor | None] = [None] * n
            for out, chunk in self._run(level, items):
                for j, i in enumerate(chunk):
                    rows[i] = out.low_padded[j, 0].float().cpu()
            return Embeddings(pooled=torch.stack(rows), extras={"level": "clip"})
        width = max(min(self._count(level, i), self.max_clips) for i in items)
        if self.options.pad_to is not None:
            width = max(width, self.options.pad_to)
        pooled = [None] * n
        tokens = torch.zeros((n, width, self.model.clip_dim if level == "video" else self.model.sentence_dim))
        mask = torch.zeros((n, width), dtype=torch.long)
        context = [None] * n
        for out, chunk in self._run(level, items):
            for j, i in enumerate(chunk):
                count = int(out.low_lengths[j])
                pooled[i], context[i] = out.high[j].float().cpu(), out.context[j].float().cpu()
                tokens[i, :count], mask[i, :count] = out.low_padded[j, :count].float().cpu(), 1
        return Embeddings(pooled=torch.stack(pooled), tokens=tokens, mask=mask,
                          extras={"context": torch.stack(context), "level": "video"})  # fmt: skip

    def embed_video(self, videos: Any, segments: Sequence[Sequence[tuple[float, float]]] | None = None) -> Embeddings:
        """Videos -> video embeddings (pooled) and clip embeddings (tokens, mask 1 = real)."""
        items = self._video_items(videos)
        if segments is not None and len(segments) != len(items):
            raise CootInputError(f"segments: one list per video expected ({len(items)}), got {len(segments)}")
        decoded = [self._video_item(v, None if segments is None else segments[i]) for i, v in enumerate(items)]
        feats = [f for f, _ in decoded]
        if self.level == "clip":
            feats = [f if len(f.clips) == 1 else CootVideoFeatures(f.features) for f in feats]
        out = self._embeddings("video", feats)
        out.extras["provenance"] = [p for _, p in decoded]
        return out

    def embed_text(self, texts: Any) -> Embeddings:
        """Texts -> paragraph embeddings (pooled) and sentence embeddings (tokens, mask); one row
        per item (a string is a paragraph of one sentence, a list of strings inside the list a
        paragraph)."""
        return self._embeddings("text", [self.text_features(t) for t in self._text_items(texts)])

    def similarity(self, text: Embeddings, video: Embeddings, level: str | None = None) -> torch.Tensor:
        """Cosine similarity, (n_text, n_video). ``level="video"`` (default, the paper's video-paragraph
        retrieval): the pooled vectors. ``level="clip"``: every real sentence x every real clip,
        flattened in item order (for a clip-level operator: its pooled vectors)."""
        level = level or "video"
        if level not in LEVELS:
            raise ConfigError(f"similarity level must be one of {LEVELS}, got {level!r}")
        if level == "clip" and video.extras.get("level") != "clip":
            if text.tokens is None or video.tokens is None:
                raise CootInputError("clip-level similarity needs sentence/clip tokens (embed_text / embed_video)")
            t = text.tokens[text.mask.bool()] if text.mask is not None else text.tokens.flatten(0, 1)
            v = video.tokens[video.mask.bool()] if video.mask is not None else video.tokens.flatten(0, 1)
        else:
            t, v = text.pooled, video.pooled
        if t.shape[-1] != v.shape[-1]:
            raise CootInputError(f"text and video embeddings differ in size ({t.shape[-1]} vs {v.shape[-1]}): "
                                 "compare the same level")  # fmt: skip
        return _normed(t.float()) @ _normed(v.float()).T

    # -- benchmarks and conformance ---------------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Precomputed features: ``batch_size`` videos of ``num_frames`` (default 80) steps in 4 clips."""
        steps = num_frames or self.config.max_frames
        generator = torch.Generator().manual_seed(0)
        bounds = [(round(i * steps / 4), round((i + 1) * steps / 4)) for i in range(4)] if steps >= 4 else []
        return [CootVideoFeatures(torch.randn(steps, self.config.video_feature_dim, generator=generator), bounds)
                for _ in range(batch_size)]  # fmt: skip

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """16-wide, two-head networks over the card's video features; a one-layer 16-wide BERT
        (the real BERT vocabulary size) for 32-d text features; S3D windows at 32 px."""
        text = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
        return {"hidden_dim": 16, "num_heads": 2, "text_feature_dim": 32, "text_model": text, "resize": 32, "crop": 32}


# -- helpers ------------------------------------------------------------------------------------
def _is_clip(item: Any) -> bool:
    from vtzoo.video import VideoClip

    return isinstance(item, VideoClip)


def _is_raw_video(item: Any) -> bool:
    if isinstance(item, (str, bytes, os.PathLike)) or _is_clip(item):
        return True
    return hasattr(item, "shape") and len(item.shape) == 4


def _normed(x: torch.Tensor) -> torch.Tensor:
    # the original's retrieval normalisation: x / ||x|| without epsilon
    return x / torch.sqrt((x**2).sum(dim=-1, keepdim=True))
