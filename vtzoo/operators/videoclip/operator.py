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
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DFeatures, S3DWindowingOptions
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    OperatorOptions,
    VtzooError,
    as_text_list,
    input_provenance,
    item_source,
)
from vtzoo.operators.videoclip.model import VideoCLIPInputError, VideoCLIPModel, VideoTruncationWarning
from vtzoo.registry.operators import register_operator


class MissingS3DWeightsError(VtzooError, RuntimeError):
    """Raw video was given, but the S3D feature extractor has no trained weights."""


@dataclass
class VideoCLIPOptions(S3DWindowingOptions, OperatorOptions):
    """``s3d_weights``: the S3D file of the release (``s3d_howto100m.pth``), loaded with ``weights``
    as one release; the windowing fields override the card's (how raw video becomes features)."""

    s3d_weights: str | os.PathLike | None = None


@register_operator("videoclip")
class VideoCLIPOperator(Operator):
    summary = "S3D features + separate video/text BERTs (Xu et al. 2021)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "howto100m-zeroshot"
    model_class = VideoCLIPModel
    options_class = VideoCLIPOptions
    default_batch_size = 32
    tokenizer_kind = "bert"

    @classmethod
    def build(cls, card, weights: Any = None, *, device="cpu", options=None, config=None) -> "VideoCLIPOperator":
        """``s3d_weights`` is the second file of the original release: both load as one."""
        options = options if options is not None else cls.options_class()
        if options.s3d_weights is not None:
            weights = [*(weights if isinstance(weights, (list, tuple)) else [weights]), options.s3d_weights]
        return super().build(card, weights, device=device, options=options, config=config)

    def setup(self) -> None:
        if self.weights is not None and self.weights.kind == "checkpoint" and self.weights.card is None and self.card:
            self.card.warn_if_non_commercial()  # a copy of the card's original release: its licence applies
        # the model reads max_video_len seconds: decode no more than that
        self.windowing = self.options.windowing(self.preprocessing, max_windows=self.config.max_video_len)
        self.extractor = None
        if self.model.s3d is not None:
            self.extractor = S3DFeatureExtractor(self.model.s3d, self.windowing, self.options.s3d_batch_size,
                                                 warn_truncation=False)  # fmt: skip

    @property
    def video_input(self):
        return self.windowing.input_spec() if self.extractor is not None else None

    @property
    def s3d_trained(self) -> bool:
        return self.model.s3d is not None and self.model.s3d_trained

    # -- text -----------------------------------------------------------------------------------
    def caption_tensors(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> ``caps``/``cmasks`` in the original layout ``[CLS] [SEP] words [SEP] [PAD]..``.

        Word pieces beyond ``max_len - max_video_len - 3`` are cut, as the original does; the
        batch is padded to its longest caption (padding is masked, so the result is the same as
        the original's fixed length).
        """
        cfg = self.config
        ids = self.tokenizer(as_text_list(texts), add_special_tokens=False)["input_ids"]
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
        with self.compute():
            for part in self.batches(len(texts)):
                caps, cmasks = self.caption_tensors(texts[part])
                parts.append(self.model.forward_text(caps.to(self.device), cmasks.to(self.device)).pooled.float().cpu())
        return Embeddings(pooled=torch.cat(parts))

    # -- video ----------------------------------------------------------------------------------
    def video_features(self, video: Any) -> torch.Tensor:
        """One video (path, bytes, frames, a decoded clip, or features) -> its per-second features ``(T, D)``."""
        return self._features(video)[0]

    def _features(self, video: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        dim = self.config.video_input_dim
        if isinstance(video, S3DFeatures):
            return video.features, video.provenance or input_provenance("<S3DFeatures>")[0]
        if isinstance(video, np.ndarray) and video.ndim == 2:  # e.g. np.load of the extractor's .npy
            video = torch.from_numpy(np.ascontiguousarray(video))
        if isinstance(video, torch.Tensor) and video.dim() == 2 and video.shape[-1] == dim:
            return video.float(), input_provenance("<features>")[0]
        if isinstance(video, torch.Tensor) and video.dim() in (2, 3):  # features, but not (T, D)
            raise VideoCLIPInputError(
                f"VideoCLIP features must be (T, {dim}) per video (or (B, T, {dim})), got {tuple(video.shape)}", "<tensor>"
            )
        self._check_extractor()
        result = self.extractor(self.load_clip(video) if _is_clip(video) else video)
        if result.truncated:
            warnings.warn(
                f"VideoCLIP reads the first {self.config.max_video_len} s of a video; the rest is dropped",
                VideoTruncationWarning,
                stacklevel=4,
            )
        return result.features, {**input_provenance(item_source(video))[0], **result.provenance}

    def _check_extractor(self) -> None:
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

    def _video_items(self, videos: Any) -> list[Any]:
        dim = self.config.video_input_dim
        if isinstance(videos, torch.Tensor) and videos.dim() == 3:
            if videos.shape[-1] != dim:
                raise VideoCLIPInputError(
                    f"VideoCLIP features must be (B, T, {dim}) (per-second S3D features), got {tuple(videos.shape)}",
                    "<tensor>",
                )
            return list(videos)  # a (B, T, D) batch of features
        items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
        if not items:
            raise VideoCLIPInputError("embed_video needs at least one video (got an empty list)")
        return items

    def embed_video(self, videos: Any) -> Embeddings:
        """Videos -> pooled VideoCLIP embeddings (N, hidden); ``extras['seconds']`` = seconds used."""
        cfg = self.config
        features, provenance = zip(*(self._features(v) for v in self._video_items(videos)))
        pooled, seconds = [], []
        with self.compute():
            for part in self.batches(len(features)):
                padded, mask = _pad_features(list(features[part]), cfg.max_video_len, cfg.video_input_dim)
                out = self.model.forward_video(padded.to(self.device), mask.to(self.device))
                pooled.append(out.pooled.float().cpu())
                seconds.append(mask[:, : cfg.max_video_len].sum(1))
        return Embeddings(pooled=torch.cat(pooled), extras={"seconds": torch.cat(seconds), "provenance": list(provenance)})

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """Raw dot products of the pooled vectors (the original's retrieval score), (n_text, n_video)."""
        return VideoCLIPModel.similarity(text.pooled.float(), video.pooled.float())

    # -- benchmarks and conformance ---------------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> Any:
        """Per-second S3D features (batch, max_video_len, 512); with ``num_frames``, raw clips
        (num_frames, 3, crop, crop) in [0, 1] that go through S3D first."""
        cfg = self.config
        generator = torch.Generator().manual_seed(0)
        if num_frames is None:
            feats = torch.randn(batch_size, cfg.max_video_len, cfg.video_input_dim, generator=generator)
            return torch.nn.functional.normalize(feats, dim=-1)
        crop = self.windowing.crop
        return [torch.rand(num_frames, 3, crop, crop, generator=generator) for _ in range(batch_size)]

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """Two one-layer 32-wide BERT towers (the real BERT vocabulary size) over the card's S3D."""
        return {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "text_num_hidden_layers": 1,
                "video_num_hidden_layers": 1}  # fmt: skip


# -- helpers ------------------------------------------------------------------------------------
def _is_clip(video: Any) -> bool:
    from vtzoo.video import VideoClip

    return isinstance(video, VideoClip)


def _pad_features(features: list[torch.Tensor], max_len: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad per-video features to ``max(max_len, longest)`` steps (the model truncates, warning)."""
    for f in features:
        if f.dim() != 2 or f.shape[-1] != dim:
            raise VideoCLIPInputError(f"VideoCLIP features must be (T, {dim}) per video, got {tuple(f.shape)}", "<tensor>")
        if f.shape[0] == 0:
            raise VideoCLIPInputError("a video has zero seconds of features", "<tensor>")
    length = max(max_len, *(f.shape[0] for f in features))
    padded = torch.zeros((len(features), length, dim))
    mask = torch.zeros((len(features), length), dtype=torch.bool)
    for i, f in enumerate(features):
        padded[i, : f.shape[0]] = f.float()
        mask[i, : f.shape[0]] = True
    return padded, mask
