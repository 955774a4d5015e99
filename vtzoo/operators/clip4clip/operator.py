"""The ``clip4clip`` operator: video/text embeddings and the CLIP4Clip head's own scoring."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Sequence

import torch

from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    VtzooError,
    as_text_list,
)
from vtzoo.backbones.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from vtzoo.operators.clip4clip.model import CLIP4ClipModel
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import build_model

DEFAULT_TOKENIZER = {"repo": "openai/clip-vit-base-patch32", "revision": None}


class TextTruncatedWarning(UserWarning):
    """A text had more tokens than ``max_words`` and was cut (keeping its end-of-text token)."""


@register_operator("clip4clip")
class CLIP4ClipOperator(Operator):
    """CLIP4Clip (arXiv 2104.08860) behind the vtzoo interface.

    * ``embed_video`` takes paths / bytes / decoded frames (decoded and preprocessed as the card
      says: 1 frame per second, at most ``max_frames`` uniformly kept, short side 224 bicubic,
      centre crop 224, CLIP mean/std) or an already preprocessed float tensor (B, T, 3, H, W)
      with an optional ``mask`` (B, T). ``pooled`` is the video vector the loose heads score
      with (unit length, after the temporal module); ``tokens`` the per-frame CLIP vectors;
      ``mask`` the frame mask.
    * ``embed_text`` tokenises with transformers' ``CLIPTokenizer`` exactly as the original
      dataloader does (SOT + at most ``max_words - 2`` BPE tokens + EOT, 0-padded); longer texts
      are truncated with a :class:`TextTruncatedWarning`. ``pooled`` is the projected EOT vector
      (not normalised), ``tokens`` every projected token, ``mask`` the attention mask.
    * ``similarity`` returns what the original ranks with at evaluation: for meanP / seqLSTM /
      seqTransf ``logit_scale.exp() * cosine`` (divide by ``model.clip.logit_scale.exp()`` for
      plain cosine); for tightTransf the cross encoder's logit of every (text, video) pair.
    """

    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "vit-b32-zeroshot"
    batch_size = 16  # videos (or pairs x 16 for tightTransf) per forward pass

    def __init__(self, model: CLIP4ClipModel, card=None, device="cpu", tokenizer: Any = None):
        super().__init__(model, card, device)
        self._tokenizer_source = tokenizer
        self._tokenizer = None

    @classmethod
    def build(cls, card, weights=None, device="cpu", **config: Any) -> "CLIP4ClipOperator":
        tokenizer = config.pop("tokenizer", None)
        model, _ = build_model(CLIP4ClipModel, card, weights, overrides=config)
        return cls(model, card, device, tokenizer=tokenizer)

    @property
    def config(self):
        return self.model.config

    # -- text ---------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """transformers ``CLIPTokenizer``: the ``tokenizer=`` given at build (a folder, a Hub repo
        name or a tokenizer object), else the card's pinned repo."""
        if self._tokenizer is None:
            source = self._tokenizer_source
            if source is not None and not isinstance(source, (str, os.PathLike)):
                self._tokenizer = source
            else:
                from transformers import CLIPTokenizer

                if source is not None:
                    self._tokenizer = CLIPTokenizer.from_pretrained(os.fspath(source))
                else:
                    self._tokenizer = self._card_tokenizer()
        return self._tokenizer

    def _card_tokenizer(self):
        from vtzoo.backbones.clip_vocab import load_clip_tokenizer

        spec = dict(DEFAULT_TOKENIZER)
        spec.update((self.card.preprocessing.get("tokenizer") or {}) if self.card else {})
        return load_clip_tokenizer(spec["repo"], spec.get("revision"))

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both (N, max_words), as the original dataloader builds them."""
        texts = as_text_list(texts)
        max_words = self.config.max_words
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        ids = torch.zeros(len(texts), max_words, dtype=torch.long)
        mask = torch.zeros_like(ids)
        cut = []
        for row, tokens in enumerate(encoded):
            if len(tokens) > max_words:
                # keep SOT + the first max_words - 2 word pieces + EOT, as the original
                tokens = tokens[: max_words - 1] + tokens[-1:]
                cut.append(row)
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        if cut:
            warnings.warn(
                f"{len(cut)} text(s) exceed CLIP4Clip's max_words={max_words} tokens and were truncated "
                f"(rows {cut[:10]}{'...' if len(cut) > 10 else ''})",
                TextTruncatedWarning,
                stacklevel=3,
            )
        return ids, mask

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids, mask = self.tokenize(texts)
        with torch.inference_mode():
            features = self.model.encode_text(ids.to(self.device))
        return Embeddings(
            pooled=features.pooled.float(), tokens=features.tokens.float(), mask=mask.to(self.device)
        )

    # -- video --------------------------------------------------------------------------------
    def preprocess(self):
        """The frame preprocessing of the card, at the model's input resolution."""
        from vtzoo.video import Preprocess

        prep = dict(self.card.preprocessing) if self.card else {}
        prep.setdefault("mean", list(OPENAI_CLIP_MEAN))
        prep.setdefault("std", list(OPENAI_CLIP_STD))
        pre = Preprocess.from_card(prep)
        size = self.config.image_resolution
        if pre.crop != size:  # a config override of the resolution wins over the card
            pre = dataclasses.replace(pre, resize=size, crop=size)
        return pre

    def load_clip(self, source: Any):
        """Decode and preprocess one video as the card says (``max_frames`` from the config)."""
        from vtzoo.video import load_video, sampling_from_card

        prep = dict(self.card.preprocessing) if self.card else {"fps": 1, "frames": self.config.max_frames}
        prep["frames"] = self.config.max_frames
        return load_video(source, preprocess=self.preprocess(), **sampling_from_card(prep))

    def _video_batch(self, videos: Any, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if isinstance(videos, torch.Tensor) and videos.dim() == 5 and videos.is_floating_point():
            return self._check_tensor(videos, mask), self._check_mask(videos, mask), {}
        if isinstance(videos, torch.Tensor) and videos.dim() not in (4, 5):
            raise ValueError(
                f"clip4clip expects a preprocessed video tensor (B, T, 3, H, W) (or a decoded clip (T, C, H, W)), "
                f"got shape {tuple(videos.shape)}"
            )
        if mask is not None:
            raise ValueError("mask= only goes with a preprocessed (B, T, 3, H, W) tensor")
        from vtzoo.video import stack_clips

        # a list of videos, or a batch of decoded uint8 clips (B, T, ...); anything else is one video
        batched = isinstance(videos, (list, tuple)) or (isinstance(videos, torch.Tensor) and videos.dim() == 5)
        items = list(videos) if batched else [videos]
        if not items:
            raise VtzooError("embed_video got an empty list of videos")
        clips = [self.load_clip(item) for item in items]
        frames, frame_mask = stack_clips(clips, pad_to=max(len(c) for c in clips))
        return frames, frame_mask, {"provenance": [c.provenance() for c in clips]}

    def _check_tensor(self, video: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        size = self.config.image_resolution
        if video.shape[2] != 3 or tuple(video.shape[-2:]) != (size, size):
            raise ValueError(
                f"clip4clip expects preprocessed video as (B, T, 3, {size}, {size}) (batch, frames, RGB, height, "
                f"width), got shape {tuple(video.shape)}"
            )
        limit = self.config.context_length - (1 if self.config.sim_header == "tightTransf" else 0)
        if video.shape[1] > limit and self.config.sim_header in ("seqTransf", "tightTransf"):  # position tables
            raise ValueError(f"{self.config.sim_header} takes at most {limit} frames per video, got {video.shape[1]}")
        return video

    @staticmethod
    def _check_mask(video: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return torch.ones(video.shape[:2], dtype=torch.long)
        mask = torch.as_tensor(mask)
        if tuple(mask.shape) != tuple(video.shape[:2]):
            raise ValueError(f"mask must be (B, T) = {tuple(video.shape[:2])}, got {tuple(mask.shape)}")
        return mask.long()

    def embed_video(self, videos: Any, mask: torch.Tensor | None = None) -> Embeddings:
        frames, frame_mask, extras = self._video_batch(videos, mask)
        pooled, tokens = [], []
        with torch.inference_mode():
            for start in range(0, frames.shape[0], self.batch_size):
                chunk = frames[start : start + self.batch_size].to(self.device, torch.float32)
                chunk_mask = frame_mask[start : start + self.batch_size].to(self.device)
                per_frame = self.model.encode_frames(chunk, chunk_mask)
                if self.config.loose:
                    pooled.append(self.model.video_vector(per_frame, chunk_mask))
                else:  # tightTransf scores pairs; for an index, the meanP vector of the frames
                    pooled.append(self.model.pool_frames(per_frame, chunk_mask))
                tokens.append(per_frame)
        return Embeddings(
            pooled=torch.cat(pooled).float(),
            tokens=torch.cat(tokens).float(),
            mask=frame_mask.to(self.device),
            extras=extras,
        )

    # -- scoring ------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) scores as the original ranks them (see the class docstring)."""
        with torch.inference_mode():
            text_vec = text.pooled.to(self.device, torch.float32)
            if self.config.loose:
                return self.model.loose_logits(text_vec, video.pooled.to(self.device, torch.float32))
            if video.tokens is None:
                raise ValueError("tightTransf scores with the per-frame tokens: pass Embeddings from embed_video")
            mask = video.mask if video.mask is not None else torch.ones(video.tokens.shape[:2], dtype=torch.long)
            return self.model.cross_logits(
                text_vec, video.tokens.to(self.device, torch.float32), mask.to(self.device), chunk=self.batch_size * 16
            )

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        frames = num_frames or self.config.max_frames
        size = self.config.image_resolution
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch_size, frames, 3, size, size, generator=generator)
