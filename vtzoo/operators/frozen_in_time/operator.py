"""The ``frozen_in_time`` operator: joint video/image and text embeddings (Bain et al., ICCV 2021).

``embed_video`` takes video paths or bytes (``frames`` frames sampled at the middle of equal
segments, as the original's test split), image paths (one-frame videos: the paper's joint
image-video training), decoded frames (uint8 numpy/torch, sampled and preprocessed like a
video), clips decoded with ``op.video_input``, or clips already preprocessed (float32
(F, 3, H, W) or (B, F, 3, H, W), F <= the model's num_frames). ``similarity`` is the original's
cosine ``sim_matrix`` (no temperature). Original ``.pth.tar`` releases load through the one
loading path (see ``convert.py``), with the temporal fix for another frame count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.errors import InputError
from vtzoo.operators.base import (
    TEXT_EMBEDDING,
    VIDEO_EMBEDDING,
    VIDEO_TEXT_SIMILARITY,
    Embeddings,
    Operator,
    VideoInput,
    as_text_list,
    input_provenance,
    video_items,
)
from vtzoo.operators.frozen_in_time.model import FrozenInTimeModel, sim_matrix
from vtzoo.registry.operators import register_operator
from vtzoo.video import VideoClip, VideoInputSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
TEXT_BATCH_SIZE = 128  # texts per forward pass unless batch_size is given


@register_operator("frozen_in_time")
class FrozenInTimeOperator(Operator):
    """Frozen in Time behind the common interface (video/image embedding, text embedding, similarity)."""

    summary = "divided space-time ViT + DistilBERT (Bain et al. 2021)"
    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "cc-webvid2m-4f"
    model_class = FrozenInTimeModel
    default_batch_size = 8
    tokenizer_kind = "distilbert"

    @property
    def num_frames(self) -> int:
        """Frames sampled per video: the card's ``frames``, never more than the model's temporal table."""
        return min(int(self.preprocessing.get("frames") or self.config.num_frames), self.config.num_frames)

    @property
    def pads_short_videos(self) -> bool:
        return bool(self.preprocessing.get("pad_short_videos", True))

    # -- text -------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        # the original truncates at the tokenizer's limit; DistilBERT has no positions past it
        limit = self.config.text_max_position_embeddings
        return min(int(self.preprocessing.get("max_length") or limit), limit)

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """DistilBERT ids and attention mask, padded to the longest text ([CLS] ... [SEP])."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return batch["input_ids"], batch["attention_mask"]

    def embed_text(self, texts: Sequence[str]) -> Embeddings:
        """Joint-space text embeddings (N, D), un-normalised as the original returns them."""
        texts = as_text_list(texts)
        out = []
        with self.compute():
            for part in self.batches(len(texts), self.options.batch_size or TEXT_BATCH_SIZE):
                ids, mask = self.tokenize(texts[part])
                out.append(self.model.encode_text(ids.to(self.device), mask.to(self.device)).float().cpu())
        return Embeddings(pooled=torch.cat(out))

    # -- video ------------------------------------------------------------------------------
    @property
    def video_input(self) -> VideoInputSpec:
        """``num_frames`` frames at the middles of equal segments (zero-padded at the end when the
        video is shorter, after normalisation), resized and normalised as the card says."""
        spec = VideoInputSpec.from_card(self.preprocessing, frames=self.num_frames)
        return spec.replace(pad=self.pads_short_videos)

    def load_clip(self, source: Any, start: float | None = None, end: float | None = None) -> VideoClip:
        """A video (path, bytes, decoded frames) or an image path (a one-frame clip, not padded)."""
        if _is_image(source):
            return self.load_image(source)
        return super().load_clip(source, start, end)

    def load_image(self, path: str | os.PathLike) -> VideoClip:
        """An image as a one-frame clip, preprocessed like video frames."""
        from PIL import Image, UnidentifiedImageError

        from vtzoo.video import VideoDecodeError, load_video

        try:
            with Image.open(path) as image:
                pixels = np.array(image.convert("RGB"))  # a writable copy
        except FileNotFoundError:
            raise VideoDecodeError(os.fspath(path), "no such file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoDecodeError(os.fspath(path), f"not a readable image ({exc})") from None
        clip = load_video(pixels[None], num_frames=1, preprocess=self.video_input.preprocess)
        clip.source, clip.backend = os.fspath(path), "pil"
        return clip

    def _clip(self, item: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """One input -> a preprocessed clip (F, 3, H, W) and its provenance.

        Float torch tensors are clips already preprocessed (normalised, at the model's
        resolution); uint8 tensors and numpy arrays are decoded frames, sampled and
        preprocessed like a video file.
        """
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            if item.dim() != 4:
                raise InputError(
                    "a float tensor is taken as a preprocessed clip (frames, 3, H, W); got shape "
                    f"{tuple(item.shape)} (pass uint8 frames to have them sampled and preprocessed)",
                    "<tensor>",
                )
            return item.float(), input_provenance("<tensor>")[0]
        clip = self.load_clip(item)
        if _is_image(item):
            return clip.frames, {**clip.provenance(), "image": True}
        frames = clip.frames
        if self.pads_short_videos and frames.shape[0] < self.num_frames:
            # Quirk kept: the original zero-pads a short video to num_frames (after normalisation)
            # and the model attends to the padded frames as if they were real (no frame mask). A
            # file is padded as it is decoded; a clip decoded elsewhere (a pipeline step) here.
            frames = torch.cat([frames, frames.new_zeros(self.num_frames - frames.shape[0], *frames.shape[1:])])
        return frames, clip.provenance()

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        """Joint-space video embeddings (N, D), un-normalised as the original returns them.

        Clips with different frame counts (e.g. images and videos) are run in separate batches:
        the model attends over every frame it is given, so they are never padded to each other.
        """
        clips = [self._clip(item) for item in video_items(videos)]
        for frames, record in clips:
            try:
                self.model.video_model.check_input(frames.unsqueeze(0))
            except InputError as exc:
                raise exc.with_source(record["source"]) from None
        pooled = self.map_by_shape(self.model.encode_video, [frames for frames, _ in clips])
        return Embeddings(
            pooled=torch.stack(pooled),
            extras={"num_frames": [frames.shape[0] for frames, _ in clips], "provenance": [r for _, r in clips]},
        )

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) cosine similarities, as the original's ``sim_matrix``."""
        return sim_matrix(text.pooled.float(), video.pooled.float())

    # -- benchmarks and conformance ---------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        frames = num_frames or self.num_frames
        size = self.config.img_size
        return torch.randn(batch_size, frames, self.config.in_chans, size, size)

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """Two 32-px blocks and one text layer (the real 30522-token vocabulary), 16-d joint space."""
        return {
            "img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2,
            "text_dim": 16, "text_layers": 1, "text_heads": 2, "text_hidden_dim": 32, "projection_dim": 16,
            "preprocessing": {"resize": 36, "crop": 36, "resize_after_crop": 32},
        }  # fmt: skip


def _is_image(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) and Path(item).suffix.lower() in IMAGE_SUFFIXES
