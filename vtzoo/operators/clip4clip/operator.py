"""The ``clip4clip`` operator: video/text embeddings and the CLIP4Clip head's own scoring."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from vtzoo.backbones import clip_input
from vtzoo.backbones.clip import CLIPSizes, tiny_sizes
from vtzoo.backbones.clip_input import TextTruncatedWarning  # noqa: F401  (part of this operator's interface)
from vtzoo.backbones.cross import pool_frames
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    InputError,
    Operator,
    as_text_list,
)
from vtzoo.operators.clip4clip.model import CLIP4ClipModel
from vtzoo.registry.operators import register_operator


@register_operator("clip4clip")
class CLIP4ClipOperator(Operator):
    """CLIP4Clip (arXiv 2104.08860) behind the vtzoo interface.

    * ``embed_video`` takes paths / bytes / decoded frames (decoded and preprocessed as the card
      says: 1 frame per second, at most ``max_frames`` uniformly kept, short side bicubic to the
      model's resolution, centre crop, CLIP mean/std) or an already preprocessed float tensor
      (B, T, 3, H, W) with an optional ``mask`` (B, T). ``pooled`` is the video vector the loose
      heads score with (unit length, after the temporal module; for tightTransf the meanP vector
      of the frames); ``tokens`` the per-frame CLIP vectors; ``mask`` the frame mask.
    * ``embed_text`` tokenises with transformers' ``CLIPTokenizer`` exactly as the original
      dataloader does (SOT + at most ``max_words - 2`` BPE tokens + EOT, 0-padded); longer texts
      are truncated with a :class:`TextTruncatedWarning`. ``pooled`` is the projected EOT vector
      (not normalised), ``tokens`` every projected token, ``mask`` the attention mask.
    * ``similarity`` returns what the original ranks with at evaluation: for meanP / seqLSTM /
      seqTransf ``logit_scale.exp() * cosine`` (divide by ``model.clip.logit_scale.exp()`` for
      plain cosine); for tightTransf the cross encoder's logit of every (text, video) pair.
    """

    summary = "CLIP frames + 4 similarity heads (Luo et al. 2021)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "vit-b32-zeroshot"
    model_class = CLIP4ClipModel
    default_batch_size = 16  # videos (or 16 x as many pairs for tightTransf) per forward pass
    tokenizer_kind = "clip"

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        sizes = CLIPSizes(**(card.config.get("clip") or {})) if card is not None else CLIPSizes()
        return {"clip": dataclasses.asdict(tiny_sizes(sizes)), "cross_hidden_size": 64, "cross_num_attention_heads": 2,
                "cross_num_hidden_layers": 1, "max_words": 8, "max_frames": 4}

    # -- text ---------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both (N, max_words), as the original dataloader builds them."""
        return clip_input.token_ids(self.tokenizer, as_text_list(texts), self.config.max_words, "CLIP4Clip")

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids, mask = self.tokenize(texts)
        features = self.map_batches(self.model.encode_text, ids)
        return Embeddings(
            pooled=torch.cat([f.pooled for f in features]).float(),
            tokens=torch.cat([f.tokens for f in features]).float(),
            mask=mask.to(self.device),
        )

    # -- video --------------------------------------------------------------------------------
    @property
    def video_input(self):
        return clip_input.video_input(self.preprocessing, self.config.clip.image_resolution, self.config.max_frames)

    @property
    def frame_limit(self) -> int | None:
        """The most frames per video the head's position tables take (None: any number)."""
        header, positions = self.config.sim_header, self.config.clip.context_length
        return {"seqTransf": positions, "tightTransf": positions - 1}.get(header)  # tightTransf: + the text

    def embed_video(self, videos: Any, mask: torch.Tensor | None = None) -> Embeddings:
        frames, frame_mask, provenance = clip_input.video_batch(self, videos, mask, self.frame_limit)
        parts = self.map_batches(self._frames_and_vector, frames.float(), frame_mask)
        return Embeddings(
            pooled=torch.cat([vector for _, vector in parts]).float(),
            tokens=torch.cat([per_frame for per_frame, _ in parts]).float(),
            mask=frame_mask.to(self.device),
            extras={"provenance": provenance},
        )

    def _frames_and_vector(self, frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per_frame = self.model.encode_frames(frames, mask)
        if self.config.loose:
            return per_frame, self.model.video_vector(per_frame, mask)
        return per_frame, pool_frames(per_frame, mask)  # tightTransf scores pairs; an index gets meanP

    # -- scoring ------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) scores as the original ranks them (see the class docstring)."""
        text_vectors = text.pooled.to(self.device, torch.float32)
        with self.compute():
            if self.config.loose:
                return self.model.loose_logits(text_vectors, video.pooled.to(self.device, torch.float32)).float()
            if video.tokens is None:
                raise InputError("tightTransf scores with the per-frame tokens: pass Embeddings from embed_video")
            mask = video.mask if video.mask is not None else torch.ones(video.tokens.shape[:2], dtype=torch.long)
            logits = self.model.cross_logits(
                text_vectors, video.tokens.to(self.device, torch.float32), mask.to(self.device), chunk=self.batch_size * 16
            )
        return logits.float()

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        frames = num_frames or self.config.max_frames
        size = self.config.clip.image_resolution
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch_size, frames, 3, size, size, generator=generator)
