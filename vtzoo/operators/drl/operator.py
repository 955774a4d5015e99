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

import warnings
from typing import Any, Sequence

import torch

from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    VideoInput,
    as_text_list,
)
from vtzoo.operators.drl import interaction as I
from vtzoo.operators.drl.model import DRLModel
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import build_model

# Keep the (texts x videos x tokens x frames) similarity block of one step below ~64 MB.
_SIM_BLOCK_ELEMENTS = 1 << 24
_VIDEO_BATCH = 8
_TEXT_BATCH = 256


@register_operator("drl")
class DRLOperator(Operator):
    """DRL behind the common interface; ``loss`` computes the training objective for fine-tuning."""

    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "vit-b32-msrvtt-wti"

    def __init__(self, model: DRLModel, card=None, device: str | torch.device = "cpu"):
        super().__init__(model, card, device)
        self.config = model.config
        self.preprocessing: dict[str, Any] = dict(card.preprocessing) if card is not None else {}
        self._tokenizer = None
        self._preprocess = None

    @classmethod
    def build(cls, card, weights: Any = None, device: str | torch.device = "cpu", **config: Any) -> "DRLOperator":
        model, _ = build_model(DRLModel, card, weights, overrides=config)
        return cls(model, card, device)

    # -- text -------------------------------------------------------------------------------------
    @property
    def max_words(self) -> int:
        return int(self.config.max_words)

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP BPE ids as the original dataloader builds them: SOT + tokens (cut to max_words-1
        with SOT) + EOT, zero-padded to ``max_words`` (always: the padded zeros take part in
        the token-wise maxima, so the padding length is part of the scoring)."""
        texts = as_text_list(texts)
        tok = self._get_tokenizer()
        n = self.max_words
        ids = torch.zeros(len(texts), n, dtype=torch.long)
        mask = torch.zeros(len(texts), n, dtype=torch.long)
        cut = []
        for row, text in enumerate(texts):
            words = tok.encode(text, add_special_tokens=False)
            if len(words) > n - 2:
                cut.append(row)
            seq = [tok.bos_token_id, *words[: n - 2], tok.eos_token_id]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        if cut:
            warnings.warn(
                f"{len(cut)} text(s) have more than max_words={n} tokens and were cut as the original does "
                f"(rows {cut[:10]})",
                stacklevel=3,
            )
        return ids, mask

    def _get_tokenizer(self):
        if self._tokenizer is None:
            from vtzoo.backbones.clip_vocab import load_clip_tokenizer

            spec = self.preprocessing.get("tokenizer")
            spec = spec if isinstance(spec, dict) else {}
            self._tokenizer = load_clip_tokenizer(spec.get("repo", "openai/clip-vit-base-patch32"), spec.get("revision"))
        return self._tokenizer

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        ids, mask = self.tokenize(texts)
        feats = []
        with torch.inference_mode():
            for start in range(0, len(ids), _TEXT_BATCH):
                feats.append(self.model.encode_text(ids[start : start + _TEXT_BATCH].to(self.device)))
        tokens = torch.cat(feats)
        mask = mask.to(self.device)
        pooled = I.l2_normalise(I.eot_features(tokens, mask))
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask, extras={"input_ids": ids})

    # -- video ------------------------------------------------------------------------------------
    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        """Paths, bytes, decoded clips ((T, H, W, C) uint8 arrays or (T, C, H, W) tensors), a
        preprocessed batch (B, T, 3, H, W), or ``{"video": (B, T, 3, H, W), "video_mask": (B, T)}``."""
        pixels, mask = self._video_batch(videos)
        feats = []
        with torch.inference_mode():
            for start in range(0, len(pixels), _VIDEO_BATCH):
                chunk = pixels[start : start + _VIDEO_BATCH].to(self.device, torch.float32)
                feats.append(self.model.encode_video(chunk, mask[start : start + _VIDEO_BATCH].to(self.device)))
        tokens = torch.cat(feats)
        mask = mask.to(self.device)
        pooled = I.l2_normalise(I.masked_frame_mean(I.l2_normalise(tokens), mask))
        return Embeddings(pooled=pooled, tokens=tokens, mask=mask)

    def _video_batch(self, videos: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(videos, dict):
            pixels, mask = videos.get("video"), videos.get("video_mask")
            if not isinstance(pixels, torch.Tensor):
                raise TypeError("a dict video input needs a tensor under 'video' (B, T, 3, H, W)")
            mask = torch.ones(pixels.shape[:2], dtype=torch.long) if mask is None else torch.as_tensor(mask).long()
            return self._check_pixels(pixels, mask)
        if isinstance(videos, torch.Tensor) and videos.dim() == 5 and videos.is_floating_point():
            return self._check_pixels(videos, torch.ones(videos.shape[:2], dtype=torch.long))
        if isinstance(videos, torch.Tensor) and videos.dim() != 4:
            raise ValueError(
                "drl expects a decoded clip (T, C, H, W), a preprocessed batch (B, T, 3, H, W) or "
                f"{{'video': ..., 'video_mask': ...}}, got a tensor of shape {tuple(videos.shape)}"
            )
        from vtzoo.video import stack_clips

        items = list(videos) if isinstance(videos, (list, tuple)) else [videos]
        if not items:
            raise ValueError("embed_video needs at least one video (got an empty list)")
        clips = [self.load_clip(item) for item in items]
        # pad to max_frames like the original dataloader (padded frames take part in the maxima)
        pixels, mask = stack_clips(clips, pad_to=max(self.config.max_frames, max(len(c) for c in clips)))
        return self._check_pixels(pixels, mask)

    def _check_pixels(self, pixels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        res = self.config.image_resolution
        if pixels.dim() != 5 or pixels.shape[2] != 3 or tuple(pixels.shape[3:]) != (res, res):
            raise ValueError(
                f"drl expects preprocessed videos (B, T, 3, {res}, {res}), got shape {tuple(pixels.shape)}"
            )
        if mask.shape != pixels.shape[:2]:
            raise ValueError(f"video_mask {tuple(mask.shape)} does not match the videos {tuple(pixels.shape[:2])}")
        if bool((mask.sum(-1) == 0).any()):
            raise ValueError("every video needs at least one valid frame (a video_mask row is all zeros)")
        return pixels, mask

    def preprocess(self):
        """The card's frame preprocessing at the model's input resolution."""
        if self._preprocess is None:
            from vtzoo.video import Preprocess

            prep = {**_DEFAULT_PREPROCESSING, **self.preprocessing}
            res = self.config.image_resolution
            if prep.get("crop") != res:
                # the model's input size decides (e.g. a small config under a full-size card)
                prep.update(resize=res, crop=res)
            self._preprocess = Preprocess.from_card(prep)
        return self._preprocess

    def load_clip(self, source: Any):
        """Decode and preprocess one video: 1 frame per second, thinned to ``max_frames``
        uniformly when longer (the original's sampling), unless the card says otherwise."""
        from vtzoo.video import load_video, sampling_from_card

        prep = {"fps": 1, **self.preprocessing, "frames": self.config.max_frames}
        return load_video(source, preprocess=self.preprocess(), **sampling_from_card(prep))

    # -- scoring ----------------------------------------------------------------------------------
    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) evaluation logits of the configured interaction (unscaled, as the
        original ranks with them)."""
        for name, emb in (("text", text), ("video", video)):
            if emb.tokens is None or emb.mask is None:
                raise ValueError(f"DRL scores token-level embeddings: the {name} Embeddings have no tokens/mask "
                                 f"(use this operator's embed_{name})")
        t_tok, t_mask = text.tokens.to(self.device).float(), text.mask.to(self.device)
        v_tok, v_mask = video.tokens.to(self.device).float(), video.mask.to(self.device)
        per_video = max(1, t_tok.shape[0] * t_tok.shape[1] * v_tok.shape[1])
        step = max(1, _SIM_BLOCK_ELEMENTS // per_video)
        blocks = []
        with torch.inference_mode():
            for start in range(0, v_tok.shape[0], step):
                end = start + step
                blocks.append(self.model.similarity(t_tok, v_tok[start:end], t_mask, v_mask[start:end]))
        return torch.cat(blocks, dim=1)

    def loss(self, texts: Sequence[str], videos: VideoInput | Sequence[VideoInput]) -> torch.Tensor:
        """The original's training loss for matched pairs (text i describes video i), with
        gradients: (CrossEn(t2v) + CrossEn(v2t)) / 2 + cdcr_lambda * cdcr on logits scaled by
        exp(logit_scale). Train-mode randomness (cdcr=1 draws, xti dropout) uses torch's global
        generator."""
        ids, text_mask = self.tokenize(texts)
        pixels, video_mask = self._video_batch(videos)
        if len(ids) != len(pixels):
            raise ValueError(f"loss pairs text i with video i: got {len(ids)} texts and {len(pixels)} videos")
        was_training = self.model.training
        self.model.train()
        try:
            return self.model(ids.to(self.device), text_mask.to(self.device),
                              pixels.to(self.device, torch.float32), video_mask.to(self.device))
        finally:
            self.model.train(was_training)

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> dict[str, torch.Tensor]:
        frames = num_frames or self.config.max_frames
        res = self.config.image_resolution
        return {
            "video": torch.randn(batch_size, frames, 3, res, res),
            "video_mask": torch.ones(batch_size, frames, dtype=torch.long),
        }


# Used when the operator is built without a card (e.g. DRLOperator(model) in a script).
_DEFAULT_PREPROCESSING = {
    "resize": 224,
    "crop": 224,
    "interpolation": "bicubic",
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
}
