"""The ``drl`` operator: token-level text-video retrieval (DRL, Wang et al. 2022).

``embed_text`` / ``embed_video`` return token-level embeddings (``tokens``/``mask``) that
``similarity`` scores with the configured interaction (wti, ti, dp or xti), plus one ``pooled``
vector per item for a vector index:

* video ``pooled``: the L2-normalised mean of the L2-normalised (temporally aggregated) valid
  frame features -- the vector DRL's ``dp`` interaction compares;
* text ``pooled``: the L2-normalised feature of the last valid token (end-of-text), also dp's.

Their dot product is a good first-stage retrieval score; ``similarity`` then re-ranks the
candidates the way the paper scores. ``tokens`` hold the UNnormalised features (wti's weight
networks and xti's cross encoder read them), ``mask`` is 1 on real tokens / frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from vtzoo.backbones import clip_input
from vtzoo.backbones.clip import CLIPSizes, tiny_sizes
from vtzoo.backbones.cross import pool_frames
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    InputError,
    Operator,
    VideoInput,
    as_text_list,
)
from vtzoo.operators.drl import interaction as I
from vtzoo.operators.drl.model import DRLModel
from vtzoo.registry.operators import register_operator

# Keep the (texts x videos x tokens x frames) similarity block of one step below ~64 MB.
_SIM_BLOCK_ELEMENTS = 1 << 24


@register_operator("drl")
class DRLOperator(Operator):
    """DRL behind the common interface; ``loss`` computes the training objective for fine-tuning."""

    summary = "token-wise interactions over CLIP (Wang et al. 2022)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "vit-b32-msrvtt-wti"
    model_class = DRLModel
    default_batch_size = 8
    tokenizer_kind = "clip"

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        sizes = CLIPSizes(**(card.config.get("clip") or {})) if card is not None else CLIPSizes()
        return {"clip": dataclasses.asdict(tiny_sizes(sizes)), "temporal_layers": 1, "cross_layers": 1,
                "max_words": 8, "max_frames": 4}

    # -- text -------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP BPE ids as the original dataloader builds them: SOT + at most ``max_words - 2``
        tokens + EOT, zero-padded to ``max_words`` (always: the padded zeros take part in the
        token-wise maxima, so the padding length is part of the scoring)."""
        return clip_input.token_ids(self.tokenizer, as_text_list(texts), self.config.max_words, "DRL")

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids, mask = self.tokenize(texts)
        tokens = torch.cat(self.map_batches(self.model.encode_text, ids)).float()
        mask = mask.to(self.device)
        pooled = I.l2_normalise(I.eot_features(tokens, mask))
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras={"input_ids": ids})

    # -- video ------------------------------------------------------------------------------------
    @property
    def video_input(self):
        return clip_input.video_input(self.preprocessing, self.config.clip.image_resolution, self.config.max_frames)

    @property
    def frame_limit(self) -> int | None:
        """The most frames per video the position tables take (None: any number)."""
        positions = self.config.clip.context_length
        limits = [positions] if self.config.agg_module == "seqTransf" else []
        if self.config.interaction == "xti":
            limits.append(positions - 1)  # the cross encoder also takes the text's end token
        return min(limits, default=None)

    def embed_video(self, videos: VideoInput | Sequence[VideoInput], mask: torch.Tensor | None = None) -> Embeddings:
        """Paths, bytes, decoded clips ((T, H, W, C) uint8 arrays or (T, C, H, W) tensors), a
        preprocessed batch (B, T, 3, H, W) with an optional ``mask`` (B, T), or
        ``{"video": (B, T, 3, H, W), "video_mask": (B, T)}``."""
        pixels, mask, provenance = clip_input.video_batch(self, videos, mask, self.frame_limit)
        tokens = torch.cat(self.map_batches(self.model.encode_video, pixels.float(), mask)).float()
        mask = mask.to(self.device)
        return Embeddings(pooled=pool_frames(tokens, mask), tokens=tokens, mask=mask, extras={"provenance": provenance})

    # -- scoring ----------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) evaluation logits of the configured interaction (unscaled, as the
        original ranks with them)."""
        for name, emb in (("text", text), ("video", video)):
            if emb.tokens is None or emb.mask is None:
                raise InputError(f"DRL scores token-level embeddings: the {name} Embeddings have no tokens/mask "
                                 f"(use this operator's embed_{name})")
        t_tok, t_mask = text.tokens.to(self.device).float(), text.mask.to(self.device)
        v_tok, v_mask = video.tokens.to(self.device).float(), video.mask.to(self.device)
        per_video = max(1, t_tok.shape[0] * t_tok.shape[1] * v_tok.shape[1])
        step = max(1, _SIM_BLOCK_ELEMENTS // per_video)
        with self.compute():
            blocks = [self.model.similarity(t_tok, v_tok[part], t_mask, v_mask[part])
                      for part in self.batches(v_tok.shape[0], step)]
        return torch.cat(blocks, dim=1).float()

    def loss(self, texts: Sequence[str], videos: VideoInput | Sequence[VideoInput]) -> torch.Tensor:
        """The original's training loss for matched pairs (text i describes video i), with
        gradients: (CrossEn(t2v) + CrossEn(v2t)) / 2 + cdcr_lambda * cdcr on logits scaled by
        exp(logit_scale). Train-mode randomness (cdcr=1 draws, xti dropout) uses torch's global
        generator."""
        ids, text_mask = self.tokenize(texts)
        pixels, video_mask, _ = clip_input.video_batch(self, videos, None, self.frame_limit)
        if len(ids) != len(pixels):
            raise InputError(f"loss pairs text i with video i: got {len(ids)} texts and {len(pixels)} videos")
        was_training = self.model.training
        self.model.train()
        try:
            return self.model(ids.to(self.device), text_mask.to(self.device),
                              pixels.to(self.device, torch.float32), video_mask.to(self.device))
        finally:
            self.model.train(was_training)

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> dict[str, torch.Tensor]:
        frames = num_frames or self.config.max_frames
        size = self.config.clip.image_resolution
        generator = torch.Generator().manual_seed(0)
        return {
            "video": torch.randn(batch_size, frames, 3, size, size, generator=generator),
            "video_mask": torch.ones(batch_size, frames, dtype=torch.long),
        }
