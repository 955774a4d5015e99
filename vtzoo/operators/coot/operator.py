"""The ``coot`` operator: videos and paragraphs -> COOT embeddings at two levels.

* ``embed_video(videos, segments=None)``: ``pooled`` = the video embedding (768-d), ``tokens`` =
  the clip embeddings (384-d) with ``mask`` (1 = real clip); ``extras["context"]`` = the video
  context (the local net on the whole video). A video is a path / bytes / decoded frames /
  :class:`~vtzoo.video.VideoClip` (S3D features at 16 fps, YouCook2 setting: needs S3D
  weights), a ``(T, D)`` feature tensor, or :class:`CootVideoFeatures` (any feature size the
  variant takes, e.g. ActivityNet's 2048-d). Clips come from ``segments`` (seconds, one list
  per video), else the video is cut into ``clip_seconds`` pieces (10 s; vtzoo's choice: the
  original always uses annotated segments).
* ``embed_text(paragraphs)``: one paragraph = a list of sentences (``list[str]``); a list of
  paragraphs gives one row each. ``pooled`` = paragraph embedding, ``tokens`` = sentence
  embeddings. Text goes through BERT as the original's ``precompute_text.py`` does; precomputed
  :class:`CootTextFeatures` are accepted too.
* ``similarity(text, video, level="video")``: cosine, (n_text, n_video). ``level="clip"``:
  every sentence against every clip, rows/columns in item order (the masks' real positions).

``create("coot", ..., level="clip")`` gives a clip-level operator for pipelines: each video
item is ONE clip and each text item ONE sentence; ``pooled`` is then the clip / sentence
embedding. ``pad_to`` reproduces the original's batch padding of the global nets (see docs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
)
from vtzoo.operators.coot.config import CootConfig
from vtzoo.operators.coot.inputs import (
    CootTextFeatures,
    CootVideoFeatures,
    split_seconds,
    text_batch,
    video_batch,
)
from vtzoo.operators.coot.model import CootInputError, CootLevelOutput, CootModel
from vtzoo.operators.coot.video import CootS3DExtractor, CootS3DWindowing
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import WeightsError, build_model, load_state_dict_strict

LEVELS = ("video", "clip")


def _is_raw_video(item: Any) -> bool:
    from vtzoo.video import VideoClip

    if isinstance(item, (str, bytes, os.PathLike, VideoClip)):
        return True
    return hasattr(item, "shape") and len(item.shape) == 4


@register_operator("coot")
class CootOperator(Operator):
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "youcook2-s3d"

    def __init__(
        self,
        model: CootModel,
        card=None,
        device: str | torch.device = "cpu",
        *,
        level: str = "video",
        text_model: Any = None,
        tokenizer: Any = None,
        s3d: Any = None,
        windowing: CootS3DWindowing | None = None,
        clip_seconds: float = 10.0,
        pad_to: int | None = None,
        batch_size: int = 64,
    ):
        super().__init__(model, card, device)
        if level not in LEVELS:
            raise ValueError(f"coot: level must be one of {LEVELS}, got {level!r}")
        self.level, self.clip_seconds, self.pad_to, self.batch_size = level, float(clip_seconds), pad_to, batch_size
        self._text_model, self._tokenizer, self._s3d = text_model, tokenizer, s3d
        self.windowing = windowing or CootS3DWindowing()
        self._text_encoder = None
        self._video_extractor = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, card=None, weights: Any = None, device: str | torch.device = "cpu", **config: Any) -> "CootOperator":
        """``weights``: None (card), "random", a vtzoo folder / ``hf://`` repo, or an original
        checkpoint (``.pth``: the 2020 list of four state dicts or the later per-network dict;
        or a flat ``.safetensors``).

        Extra keywords: ``level`` ("video" | "clip"), ``clip_seconds``, ``pad_to``,
        ``batch_size``; ``text_model`` (a ``transformers`` BertModel, a local folder, or a Hub
        name; default the card's ``bert-base-uncased``), ``tokenizer`` (instance, ``vocab.txt``
        or folder); ``s3d_weights`` (``s3d_howto100m.pth``, an S3D module, or "random") and any
        :class:`CootS3DWindowing` field (``fps``, ``resize``, ``crop``, ``kernel``, ...).
        Everything else overrides :class:`CootConfig` fields.
        """
        options = {k: config.pop(k) for k in ("level", "clip_seconds", "pad_to", "batch_size") if k in config}
        text_model, tokenizer = config.pop("text_model", None), config.pop("tokenizer", None)
        s3d = config.pop("s3d_weights", None)
        window_values = {k: v for k, v in (card.preprocessing if card is not None else {}).items()}
        window_values.update({k: config.pop(k) for k in list(config) if k in CootS3DWindowing.__dataclass_fields__})
        model, _ = build_model(CootModel, card, weights, overrides=config)
        return cls(model.eval(), card, device, text_model=text_model, tokenizer=tokenizer, s3d=s3d,
                   windowing=CootS3DWindowing.from_dict(window_values), **options)  # fmt: skip

    @property
    def config(self) -> CootConfig:
        return self.model.config

    # -- feature extractors (built on first use) ------------------------------------------------
    @property
    def text_encoder(self):
        """BERT paragraph encoder (:class:`~vtzoo.operators.coot.text.BertParagraphEncoder`)."""
        if self._text_encoder is None:
            from vtzoo.operators.coot.text import BertParagraphEncoder

            bert = _load_bert(self._text_model, self.card)
            tokenizer = _load_tokenizer(self._tokenizer, self._text_model, self.card)
            encoder = BertParagraphEncoder(bert.to(self.device), tokenizer)
            if encoder.feature_dim != self.config.text_feature_dim:
                raise CootInputError(f"the text model gives {encoder.feature_dim}-d features (last two layers), but "
                                     f"this COOT takes {self.config.text_feature_dim}")  # fmt: skip
            self._text_encoder = self.prepare_network(encoder)
        return self._text_encoder

    @property
    def video_extractor(self) -> CootS3DExtractor:
        """HowTo100M S3D windows -> per-second features (YouCook2 setting)."""
        if self._video_extractor is None:
            if self._s3d is None:
                raise WeightsError(
                    "coot: raw video needs the HowTo100M S3D weights: create(..., s3d_weights='s3d_howto100m.pth'); "
                    "or pass precomputed features (CootVideoFeatures / a (T, D) tensor)"
                )
            s3d = self.prepare_network(_load_s3d(self._s3d).to(self.device))
            self._video_extractor = CootS3DExtractor(s3d, self.windowing)
        return self._video_extractor

    # -- inputs ---------------------------------------------------------------------------------
    def video_features(self, video: Any, segments: Sequence[tuple[float, float]] | None = None) -> CootVideoFeatures:
        """One video (any accepted form) -> :class:`CootVideoFeatures` with its clips."""
        cfg = self.config
        if isinstance(video, (CootVideoFeatures, dict)):
            feats = CootVideoFeatures.coerce(video)
            if segments is not None:
                raise CootInputError("segments= applies to raw video or plain feature tensors; CootVideoFeatures "
                                     "already carry their clips")  # fmt: skip
            return feats
        if isinstance(video, torch.Tensor) and video.dim() == 2:
            if video.shape[-1] != cfg.video_feature_dim:
                raise CootInputError(f"video features must be (T, {cfg.video_feature_dim}), got {tuple(video.shape)}")
            if segments is None:
                return CootVideoFeatures(video)
            return CootVideoFeatures.from_seconds(video, video.shape[0] / self.windowing.features_per_second,
                                                  segments, cfg.add_stop_frame, cfg.expand_segments)  # fmt: skip
        if not _is_raw_video(video):
            raise CootInputError(f"coot cannot read a video from {type(video).__name__}")
        if cfg.video_feature_dim != 512:
            raise CootInputError(f"raw video gives 512-d S3D features, but this COOT variant takes "
                                 f"{cfg.video_feature_dim}-d features: pass them as CootVideoFeatures")  # fmt: skip
        features, duration, _ = self.video_extractor(video)
        if self.level == "clip":
            return CootVideoFeatures(features)  # the whole item is one clip
        if segments is None:
            segments = split_seconds(duration, self.clip_seconds)
        return CootVideoFeatures.from_seconds(features, duration, segments, cfg.add_stop_frame, cfg.expand_segments)

    def text_features(self, paragraph: Any) -> CootTextFeatures:
        if isinstance(paragraph, (CootTextFeatures, dict)):
            return CootTextFeatures.coerce(paragraph)
        if isinstance(paragraph, str):
            paragraph = [paragraph]
        if not isinstance(paragraph, (list, tuple)) or not all(isinstance(s, str) for s in paragraph):
            raise CootInputError(f"a paragraph is a list of sentences (str), got {type(paragraph).__name__}")
        if len(paragraph) == 0:
            raise CootInputError("a paragraph needs at least one sentence (got zero)")
        return self.text_encoder(paragraph)

    def _video_items(self, videos: Any) -> list[Any]:
        if isinstance(videos, (list, tuple)):
            return list(videos)
        if isinstance(videos, torch.Tensor) and videos.dim() == 3 and videos.shape[-1] == self.config.video_feature_dim:
            return list(videos)  # (B, T, D) features
        return [videos]

    def _text_items(self, texts: Any) -> list[Any]:
        if isinstance(texts, (str, CootTextFeatures, dict)):
            return [texts]
        if self.level == "clip":
            return list(texts)  # each item is one sentence
        if isinstance(texts, (list, tuple)) and texts and all(isinstance(t, str) for t in texts):
            return [list(texts)]  # one paragraph
        return list(texts)

    # -- encoding -------------------------------------------------------------------------------
    def _run(self, level: str, items: list[Any]) -> list[tuple[CootLevelOutput, list[int]]]:
        """Encode in chunks; without ``pad_to``, items are grouped by clip/sentence count so the
        global net sees no padding and an item's embedding does not depend on its batch."""
        counts = [min(self._count(level, i), self.max_clips) for i in items]
        groups: dict[int, list[int]] = {}
        for index, count in enumerate(counts):
            groups.setdefault(count if self.pad_to is None else 0, []).append(index)
        results = []
        cfg = self.config
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                with torch.inference_mode():
                    if level == "video":
                        batch = video_batch([items[i] for i in chunk], cfg.video_feature_dim, cfg.max_frames,
                                            self.max_clips)  # fmt: skip
                        batch = {k: v.to(self.device) for k, v in batch.items()}
                        out = self.model.encode_video(**batch, pad_to=self.pad_to)
                    else:
                        batch = text_batch([items[i] for i in chunk], cfg.text_feature_dim, self.max_clips)
                        batch = {k: v.to(self.device) for k, v in batch.items()}
                        out = self.model.encode_text(**batch, pad_to=self.pad_to)
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
        if self.pad_to is not None:
            width = max(width, self.pad_to)
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
        feats = [self.video_features(v, None if segments is None else segments[i]) for i, v in enumerate(items)]
        if self.level == "clip":
            feats = [f if len(f.clips) == 1 else CootVideoFeatures(f.features) for f in feats]
        return self._embeddings("video", feats)

    def embed_text(self, texts: Any) -> Embeddings:
        """Paragraph(s) -> paragraph embeddings (pooled) and sentence embeddings (tokens, mask)."""
        items = self._text_items(texts)
        feats = [self.text_features(t) for t in items]
        return self._embeddings("text", feats)

    def similarity(self, text: Embeddings, video: Embeddings, level: str | None = None) -> torch.Tensor:
        """Cosine similarity, (n_text, n_video). ``level="video"`` (default, the paper's video-paragraph
        retrieval): the pooled vectors. ``level="clip"``: every real sentence x every real clip,
        flattened in item order (for a clip-level operator: its pooled vectors)."""
        level = level or "video"
        if level not in LEVELS:
            raise ValueError(f"similarity level must be one of {LEVELS}, got {level!r}")
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

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Precomputed features: ``batch_size`` videos of ``num_frames`` (default 80) steps in 4 clips."""
        steps = num_frames or self.config.max_frames
        generator = torch.Generator().manual_seed(0)
        bounds = [(round(i * steps / 4), round((i + 1) * steps / 4)) for i in range(4)] if steps >= 4 else []
        return [CootVideoFeatures(torch.randn(steps, self.config.video_feature_dim, generator=generator), bounds)
                for _ in range(batch_size)]  # fmt: skip


# -- helpers ------------------------------------------------------------------------------------
def _normed(x: torch.Tensor) -> torch.Tensor:
    # the original's retrieval normalisation: x / ||x|| without epsilon
    return x / torch.sqrt((x**2).sum(dim=-1, keepdim=True))


def _load_bert(spec: Any, card) -> torch.nn.Module:
    from transformers import BertModel

    if isinstance(spec, torch.nn.Module):
        return spec
    if spec is None:
        text = (card.preprocessing.get("text_model") if card is not None else None) or {}
        spec = text.get("repo") if isinstance(text, dict) else text
        if not spec:
            raise WeightsError("coot: no text model given and the card names none; pass text_model=<BertModel | folder>")
        revision = text.get("revision") if isinstance(text, dict) else None
        from vtzoo.registry.weights import download_hub_files

        folder, _ = download_hub_files(spec, revision, allow_patterns=["config.json", "*.safetensors"])
        return BertModel.from_pretrained(str(folder), add_pooling_layer=False)
    path = Path(spec)
    if path.is_dir():
        return BertModel.from_pretrained(str(path), add_pooling_layer=False)
    raise WeightsError(f"coot: text_model {spec!r} is not a BertModel or a local folder")


def _load_tokenizer(spec: Any, text_model: Any, card):
    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        return spec
    from transformers import BertTokenizerFast

    if spec is not None:
        path = Path(spec)
        if path.is_dir():
            return BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
        if path.is_file():
            import inspect

            key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
            return BertTokenizerFast(**{key: str(path)}, do_lower_case=True)
        raise WeightsError(f"coot: tokenizer {spec} does not exist")
    if isinstance(text_model, (str, os.PathLike)) and Path(text_model).is_dir():
        return BertTokenizerFast.from_pretrained(str(text_model), local_files_only=True)
    if card is not None and "tokenizer" in card.preprocessing:
        from vtzoo.registry.weights import load_tokenizer

        return load_tokenizer(card.preprocessing)
    raise WeightsError("coot: no tokenizer given and the card names none; pass tokenizer=<vocab.txt>")


def _load_s3d(spec: Any) -> torch.nn.Module:
    from vtzoo.backbones.s3d import S3D, S3DConfig
    from vtzoo.backbones.s3d import convert_original_state_dict as convert_s3d

    if isinstance(spec, torch.nn.Module):
        return spec.eval()
    model = S3D(S3DConfig())
    if spec == "random":
        return model.eval()
    from vtzoo.registry.weights import read_state_dict

    state = read_state_dict(spec)
    load_state_dict_strict(model, convert_s3d(state), str(spec))
    return model.eval()
