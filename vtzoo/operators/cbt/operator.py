"""The ``cbt`` operator: CBT (Sun et al. 2019) behind the vtzoo interface.

* ``embed_video``: S3D clip features (``mixed_5c`` of 1.5 s clips, as VideoBERT) through the
  visual transformer; ``pooled`` is the mean of the contextual clip states, ``tokens`` the states;
* ``embed_text``: BERT; ``pooled`` the mean of the token states;
* ``similarity``: the cross-modal transformer's score s(x, y) = log MI(x, y) of every pair, from the
  tokens of the two embeddings (no re-encoding);
* ``classify``: the linear probe trained on labels (``vtzoo train --op cbt --recipe linear-probe``);
* :meth:`anticipate`: the predicted features of the clip after the last one (next-clip anticipation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from vtzoo.backbones.clip_features import ClipFeatureInput
from vtzoo.errors import InputError
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_CLASSIFICATION,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    OperatorOptions,
    as_text_list,
    item_source,
    video_items,
)
from vtzoo.operators.cbt.model import CbtModel
from vtzoo.registry.operators import register_operator

@dataclass
class CbtOptions(OperatorOptions):
    """``s3d_weights``: S3D weights for raw video (None: seeded random S3D); ``clip_size``: S3D input size."""

    s3d_weights: Any = None
    clip_size: int = 224


@register_operator("cbt")
class CbtOperator(ClipFeatureInput, Operator):
    summary = "contrastive bidirectional transformers over S3D features, MI scoring (Sun et al. 2019)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY, VIDEO_CLASSIFICATION})
    default_variant = "paper-base"
    model_class = CbtModel
    options_class = CbtOptions
    default_batch_size = 16
    tokenizer_kind = "bert"
    from_paper = True

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        return {"hidden_size": 32, "visual_layers": 1, "visual_heads": 2, "intermediate_size": 64, "text_hidden_size": 32,
                "text_layers": 1, "text_heads": 2, "text_intermediate_size": 64, "cross_heads": 2, "max_clips": 16,
                "max_text_tokens": 24, "labels": ("left", "right", "up")}

    # -- inputs -----------------------------------------------------------------------------------
    def clip_features(self, videos: Any) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        """Padded (B, T, feature_dim) features, their (B, T) mask and provenance."""
        items = list(videos) if isinstance(videos, torch.Tensor) and videos.dim() == 3 else video_items(videos)
        feats, provenance = [], []
        for item in items:
            features, record = self.clips(item, item_source(item))
            if features.shape[1] != self.config.feature_dim:
                raise InputError(f"clip features must be (N, {self.config.feature_dim}), got {tuple(features.shape)}",
                                 source=record["source"])
            feats.append(features[: self.config.max_clips])
            provenance.append(record)
        length = max(f.shape[0] for f in feats)
        batch = torch.zeros(len(feats), length, self.config.feature_dim)
        mask = torch.zeros(len(feats), length, dtype=torch.long)
        for row, f in enumerate(feats):
            batch[row, : f.shape[0]], mask[row, : f.shape[0]] = f, 1
        return batch, mask, provenance

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.config.max_text_tokens,
                                 return_tensors="pt")
        return encoded["input_ids"], encoded["attention_mask"]

    # -- tasks ------------------------------------------------------------------------------------
    def embed_video(self, videos: Any) -> Embeddings:
        features, mask, provenance = self.clip_features(videos)
        states = self.map_batches(self.model.encode_video, features, mask)
        tokens = torch.cat(states).float().cpu()
        pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras={"provenance": provenance})

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids, mask = self.tokenize(as_text_list(texts))
        states = self.map_batches(lambda i, m: self.model.encode_text(i, m)[0], ids, mask)
        tokens = torch.cat(states).float().cpu()
        pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask)

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """s(x, y) = log MI(x, y) for every (text, video) pair: (n_text, n_video)."""
        if text.tokens is None or video.tokens is None:
            raise InputError("cbt scores pairs from their token states: pass Embeddings from embed_text / embed_video")
        n_text, n_video = len(text), len(video)
        t_index = torch.arange(n_text).repeat_interleave(n_video)
        v_index = torch.arange(n_video).repeat(n_text)
        scores = self.map_batches(
            self.model.cross_scores, video.tokens[v_index], video.mask[v_index], text.tokens[t_index], text.mask[t_index]
        )
        return torch.cat(scores).float().view(n_text, n_video).cpu()

    def classify(self, videos: Any, top_k: int = 5) -> list[list[tuple[str, float]]]:
        if not self.config.labels:
            raise InputError("this cbt model has no linear probe: train one with "
                             "`vtzoo train --op cbt --recipe linear-probe --weights <model>`")
        pooled = self.embed_video(videos).pooled
        with self.compute():
            probs = self.model.probe(pooled.to(self.device)).float().softmax(-1).cpu()
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        return [[(self.config.labels[int(i)], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values, indices)]

    def anticipate(self, videos: Any) -> torch.Tensor:
        """(B, feature_dim): the predicted features of the clip that follows each video."""
        features, mask, _ = self.clip_features(videos)
        lengths = mask.sum(1)
        features = torch.cat([features, torch.zeros(features.shape[0], 1, features.shape[2])], dim=1)
        mask = torch.cat([mask, torch.zeros(mask.shape[0], 1, dtype=torch.long)], dim=1)
        masked = torch.zeros_like(mask)
        rows = torch.arange(mask.shape[0])
        mask[rows, lengths], masked[rows, lengths] = 1, 1
        with self.compute():
            hidden = self.model.encode_video(features.to(self.device), mask.to(self.device), masked.to(self.device))
            predicted = self.model.predict_features(hidden).float().cpu()
        return predicted[rows, lengths]

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch_size, num_frames or 8, self.config.feature_dim, generator=generator)
