"""The ``videoclip`` operator: videos (raw or as S3D features) and captions -> VideoCLIP embeddings.

A raw video is decoded at 30 fps, cut into one-second windows and run through S3D (one 512-d
feature per second, L2-normalised, see :mod:`vtzoo.backbones.s3d.features`); the
first ``max_video_len`` (32) seconds are kept, zero-padded to 32 with a mask, exactly as the
original's aligner does, and fed to the video tower. Precomputed features ``(T, 512)`` or
``(B, T, 512)`` skip the decoding and S3D. Captions are tokenised with BERT uncased (no special
tokens), cut to ``max_len - max_video_len - 3`` word pieces and laid out as
``[CLS] [SEP] words [SEP]``. ``similarity`` is the raw dot product of the pooled vectors.

Weights: ``weights=<checkpoint_best.pt>`` (the fairseq/MMPT release) with
``s3d_weights=<s3d_howto100m.pth>``, or a folder holding both, or a list of both files; or a
vtzoo folder / ``hf://`` repo written by ``save_pretrained``. ``tokenizer=`` takes a transformers
tokenizer, a ``vocab.txt`` or a tokenizer folder (default: the card's Hub tokenizer).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DFeatures, S3DWindowing
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    VtzooError,
    as_text_list,
)
from vtzoo.operators.videoclip.config import VideoCLIPConfig
from vtzoo.operators.videoclip.convert import (
    convert_original_state_dict,
    has_s3d_weights,
    has_tower_weights,
    read_original_checkpoint,
)
from vtzoo.operators.videoclip.model import VideoCLIPInputError, VideoCLIPModel, VideoTruncationWarning
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import WeightsError, build_model, config_from_dict, load_state_dict_strict

_ORIGINAL_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".safetensors")


class MissingS3DWeightsError(VtzooError, RuntimeError):
    """Raw video was given, but the S3D feature extractor has no trained weights."""


@register_operator("videoclip")
class VideoCLIPOperator(Operator):
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "howto100m-zeroshot"

    def __init__(
        self,
        model: VideoCLIPModel,
        card=None,
        device: str | torch.device = "cpu",
        tokenizer: Any = None,
        s3d_trained: bool = True,
        batch_size: int = 32,
        windowing: S3DWindowing | None = None,
        s3d_batch_size: int = 8,
    ):
        super().__init__(model, card, device)
        self._tokenizer = tokenizer
        self.s3d_trained = s3d_trained
        self.batch_size = batch_size
        self.windowing = windowing or S3DWindowing.from_dict(card.preprocessing if card is not None else None)
        # the model reads max_video_len seconds: decode no more than that
        self.windowing.max_windows = model.config.max_video_len
        self.extractor = S3DFeatureExtractor(
            model.s3d, self.windowing, s3d_batch_size, warn_truncation=False
        ) if model.s3d is not None else None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls, card=None, weights: Any = None, device: str | torch.device = "cpu", **config: Any
    ) -> "VideoCLIPOperator":
        """``weights``: None (card), "random", a vtzoo folder / hf:// repo, or the original files.

        Extra keywords: ``s3d_weights`` (the S3D ``.pth`` next to an MMPT checkpoint),
        ``tokenizer``, ``batch_size``, and any :class:`S3DWindowing` field (how raw video becomes
        per-second features: ``fps``, ``window_frames``, ``resize``, ``crop``, ``l2_normalize``,
        ...); everything else overrides :class:`VideoCLIPConfig` fields.
        """
        tokenizer = config.pop("tokenizer", None)
        s3d_weights = config.pop("s3d_weights", None)
        batch_size = int(config.pop("batch_size", 32))
        window_values = dict(card.preprocessing) if card is not None else {}
        window_values.update({k: config.pop(k) for k in list(config) if k in S3DWindowing.__dataclass_fields__})
        windowing = S3DWindowing.from_dict(window_values)
        originals = _original_files(weights, s3d_weights)
        if originals is not None:
            model, s3d_trained = _load_original(card, originals, config)
        else:
            # random weights are random everywhere; vtzoo folders always hold the S3D weights
            model, _ = build_model(VideoCLIPModel, card, weights, overrides=config)
            s3d_trained = True
        return cls(model.eval(), card, device, tokenizer=tokenizer, s3d_trained=s3d_trained, batch_size=batch_size,
                   windowing=windowing)  # fmt: skip

    # -- text -----------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """BERT uncased tokenizer (loaded on first use, so video-only use needs none)."""
        if self._tokenizer is None:
            from vtzoo.registry.weights import load_tokenizer

            if self.card is None or "tokenizer" not in self.card.preprocessing:
                raise VtzooError("videoclip: no tokenizer given and no card names one; pass tokenizer=<vocab.txt>")
            self._tokenizer = load_tokenizer(self.card.preprocessing)
        elif isinstance(self._tokenizer, (str, os.PathLike)):
            self._tokenizer = _load_local_tokenizer(self._tokenizer)
        return self._tokenizer

    def caption_tensors(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> ``caps``/``cmasks`` in the original layout ``[CLS] [SEP] words [SEP] [PAD]..``.

        Word pieces beyond ``max_len - max_video_len - 3`` are cut, as the original does; the
        batch is padded to its longest caption (padding is masked, so the result is the same as
        the original's fixed length).
        """
        if isinstance(texts, str):
            texts = [texts]
        cfg = self.model.config
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        rows = [[cfg.cls_token_id, cfg.sep_token_id, *row[: cfg.max_text_tokens], cfg.sep_token_id] for row in ids]
        length = max(len(row) for row in rows)
        caps = torch.full((len(rows), length), cfg.pad_token_id, dtype=torch.long)
        cmasks = torch.zeros((len(rows), length), dtype=torch.bool)
        for i, row in enumerate(rows):
            caps[i, : len(row)] = torch.tensor(row)
            cmasks[i, : len(row)] = True
        return caps, cmasks

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        texts = as_text_list(texts)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                caps, cmasks = self.caption_tensors(texts[start : start + self.batch_size])
                out = self.model.forward_text(caps.to(self.device), cmasks.to(self.device))
                parts.append(Embeddings(pooled=out.pooled.float().cpu()))
        return Embeddings.concat(parts)

    # -- video ----------------------------------------------------------------------------------
    def video_features(self, video: Any) -> torch.Tensor:
        """One video (path, bytes, frames, or features) -> its per-second features ``(T, D)``."""
        dim = self.model.config.video_input_dim
        if isinstance(video, S3DFeatures):
            return video.features
        if isinstance(video, np.ndarray) and video.ndim == 2:  # e.g. np.load of the extractor's .npy
            video = torch.from_numpy(np.ascontiguousarray(video))
        if _looks_like_features(video, dim):
            return torch.as_tensor(video).float()
        if isinstance(video, torch.Tensor) and video.dim() in (2, 3):  # features, but not (T, D)
            raise VideoCLIPInputError(
                f"VideoCLIP features must be (T, {dim}) per video (or (B, T, {dim})), got {tuple(video.shape)}"
            )
        if self.extractor is None:
            raise MissingS3DWeightsError(
                "this VideoCLIP was built without its S3D feature extractor (with_s3d=False); pass per-second "
                "S3D features, or load it with s3d_weights=<s3d_howto100m.pth>"
            )
        if not self.s3d_trained:
            raise MissingS3DWeightsError(
                "the S3D feature extractor has no trained weights (only the VideoCLIP towers were loaded); pass "
                "s3d_weights=<s3d_howto100m.pth>, or per-second S3D features instead of raw video"
            )
        result = self.extractor(video)
        if result.truncated:
            warnings.warn(
                f"VideoCLIP reads the first {self.model.config.max_video_len} s of a video; the rest is dropped",
                VideoTruncationWarning,
                stacklevel=3,
            )
        return result.features

    def _video_batches(self, videos: Any) -> list[torch.Tensor]:
        dim = self.model.config.video_input_dim
        if isinstance(videos, torch.Tensor) and videos.dim() == 3 and videos.shape[-1] == dim:
            return list(videos)  # a (B, T, D) batch of features
        if isinstance(videos, torch.Tensor) and videos.dim() == 3:
            raise VideoCLIPInputError(
                f"VideoCLIP features must be (B, T, {dim}) (per-second S3D features), got {tuple(videos.shape)}"
            )
        if isinstance(videos, (list, tuple)):
            return [self.video_features(v) for v in videos]
        return [self.video_features(videos)]

    def embed_video(self, videos: Any) -> Embeddings:
        """Videos -> pooled VideoCLIP embeddings (N, hidden); ``extras['seconds']`` = seconds used."""
        cfg = self.model.config
        features = self._video_batches(videos)
        if not features:
            raise ValueError("embed_video needs at least one video")
        parts = []
        with torch.inference_mode():
            for start in range(0, len(features), self.batch_size):
                chunk = features[start : start + self.batch_size]
                padded, mask = _pad_features(chunk, cfg.max_video_len, cfg.video_input_dim)
                out = self.model.forward_video(padded.to(self.device), mask.to(self.device))
                seconds = mask[:, : cfg.max_video_len].sum(1)
                parts.append(Embeddings(pooled=out.pooled.float().cpu(), extras={"seconds": seconds}))
        return Embeddings.concat(parts)

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """Raw dot products of the pooled vectors (the original's retrieval score), (n_text, n_video)."""
        return VideoCLIPModel.similarity(text.pooled.float(), video.pooled.float())

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Per-second S3D features (batch, max_video_len, 512); with ``num_frames``, raw clips
        (num_frames, 3, 224, 224) in [0, 1] that go through S3D first."""
        cfg = self.model.config
        generator = torch.Generator().manual_seed(0)
        if num_frames is None:
            feats = torch.randn(batch_size, cfg.max_video_len, cfg.video_input_dim, generator=generator)
            return torch.nn.functional.normalize(feats, dim=-1)
        crop = self.windowing.crop
        return [torch.rand(num_frames, 3, crop, crop, generator=generator) for _ in range(batch_size)]


# -- helpers ------------------------------------------------------------------------------------
def _looks_like_features(video: Any, dim: int) -> bool:
    return isinstance(video, torch.Tensor) and video.dim() == 2 and video.shape[-1] == dim


def _pad_features(features: list[torch.Tensor], max_len: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad per-video features to ``max(max_len, longest)`` steps (the model truncates, warning)."""
    for f in features:
        if f.dim() != 2 or f.shape[-1] != dim:
            raise VideoCLIPInputError(f"VideoCLIP features must be (T, {dim}) per video, got {tuple(f.shape)}")
        if f.shape[0] == 0:
            raise VideoCLIPInputError("a video has zero seconds of features")
    length = max(max_len, *(f.shape[0] for f in features))
    padded = torch.zeros((len(features), length, dim))
    mask = torch.zeros((len(features), length), dtype=torch.bool)
    for i, f in enumerate(features):
        padded[i, : f.shape[0]] = f.float()
        mask[i, : f.shape[0]] = True
    return padded, mask


def _load_local_tokenizer(path: str | os.PathLike):
    """BERT uncased WordPiece from a ``vocab.txt`` or a local tokenizer folder."""
    import inspect

    from transformers import BertTokenizerFast

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"tokenizer {path}: no such file or directory")
    if path.is_dir():
        return BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
    # transformers 5 takes the vocab file as `vocab`, 4.x as `vocab_file`
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    return BertTokenizerFast(**{key: str(path)}, do_lower_case=True)


def _original_files(weights: Any, s3d_weights: Any) -> list[Path] | None:
    """The original release files named by ``weights`` (+ ``s3d_weights``), or None for other specs."""
    files: list[Path] = []
    path = Path(weights) if isinstance(weights, (str, os.PathLike)) else None
    if isinstance(weights, (list, tuple)):
        files = [Path(w) for w in weights]
    elif path is not None and path.is_file() and path.suffix in _ORIGINAL_SUFFIXES:
        files = [path]
    elif path is not None and path.is_dir() and not (path / "config.json").is_file():
        files = sorted(p for p in path.iterdir() if p.suffix in _ORIGINAL_SUFFIXES)
    if s3d_weights is not None:
        files.append(Path(s3d_weights))
    elif not files:
        return None
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise WeightsError(f"videoclip: checkpoint file(s) not found: {', '.join(missing)}")
    return files


def _load_original(card, files: list[Path], overrides: dict[str, Any]) -> tuple[VideoCLIPModel, bool]:
    """Build from the original release files; returns the model and whether S3D got trained weights."""
    merged: dict[str, torch.Tensor] = {}
    for file in files:
        merged.update(read_original_checkpoint(file))
    values = dict(card.config if card is not None else {})
    values.update(overrides)
    origin = ", ".join(str(f) for f in files)
    config = config_from_dict(VideoCLIPConfig, values, origin)
    converted = convert_original_state_dict(merged, config)
    if not has_tower_weights(converted):
        raise WeightsError(
            f"{origin}: only S3D weights found; VideoCLIP also needs its MMPT checkpoint (checkpoint_best.pt)"
        )
    s3d_trained = has_s3d_weights(converted)
    model = VideoCLIPModel(config)
    if not s3d_trained and model.s3d is not None:
        # keep the extractor untrained: raw video then fails with a clear message, features work
        converted.update({f"s3d.{k}": v for k, v in model.s3d.state_dict().items()})
    load_state_dict_strict(model, converted, origin)
    if card is not None:
        card.warn_if_non_commercial()
    return model, s3d_trained
