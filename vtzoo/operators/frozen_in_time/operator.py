"""The ``frozen_in_time`` operator: joint video/image and text embeddings (Bain et al., ICCV 2021).

``embed_video`` takes video paths or bytes (``frames`` frames sampled at the middle of equal
segments, as the original's test split), image paths (one-frame videos: the paper's joint
image-video training), decoded frames (uint8 numpy/torch, sampled and preprocessed like a
video), or clips already preprocessed (float32 (F, 3, H, W) or (B, F, 3, H, W), F <= the model's
num_frames). ``similarity`` is the original's cosine ``sim_matrix`` (no temperature).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
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
from vtzoo.operators.frozen_in_time.convert import convert_original_state_dict, read_original_checkpoint
from vtzoo.operators.frozen_in_time.model import FrozenInTimeModel, sim_matrix
from vtzoo.registry.operators import register_operator
from vtzoo.registry.weights import build_model, load_state_dict_strict

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
_PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".tar", ".ckpt")
# The original's test-time pipeline (data_loader/transforms.py, base/base_dataset.py).
DEFAULT_PREPROCESSING: dict[str, Any] = {
    "frames": 4,
    "sampling": "middle",
    "resize": 256,
    "crop": 256,
    "resize_after_crop": 224,
    "interpolation": "bilinear",
    "resize_backend": "torch",
    "antialias": False,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "pad_short_videos": True,
}
_TEXT_BATCH = 128
_VIDEO_BATCH = 8


def _is_pickled_checkpoint(weights: Any) -> bool:
    if not isinstance(weights, (str, os.PathLike)) or str(weights).startswith("hf://"):
        return False
    path = Path(weights)
    return path.is_file() and path.suffix in _PICKLE_SUFFIXES


@register_operator("frozen_in_time")
class FrozenInTimeOperator(Operator):
    """Frozen in Time behind the common interface (video/image embedding, text embedding, similarity)."""

    tasks = frozenset({VIDEO_EMBEDDING, TEXT_EMBEDDING, VIDEO_TEXT_SIMILARITY})
    default_variant = "cc-webvid2m-4f"

    def __init__(
        self,
        model: FrozenInTimeModel,
        card=None,
        device: str | torch.device = "cpu",
        tokenizer: Any = None,
        preprocessing: dict[str, Any] | None = None,
    ):
        super().__init__(model, card, device)
        self.config = model.config
        self.preprocessing: dict[str, Any] = {
            **DEFAULT_PREPROCESSING,
            **(dict(card.preprocessing) if card else {}),
            **(preprocessing or {}),
        }
        # Never sample more frames than the model has temporal embeddings for.
        self.num_frames = min(int(self.preprocessing.get("frames") or self.config.num_frames), self.config.num_frames)
        self._tokenizer_spec = tokenizer
        self._tokenizer = None
        self._preprocess = None

    @classmethod
    def build(
        cls,
        card,
        weights: Any = None,
        device: str | torch.device = "cpu",
        tokenizer: Any = None,
        preprocessing: dict[str, Any] | None = None,
        **config: Any,
    ) -> "FrozenInTimeOperator":
        """``weights``: see ``vtzoo.create``; an original ``.pth(.tar)`` release is read safely
        (tensors only) and converted, with the temporal-embedding fix for other frame counts.
        ``tokenizer``: a transformers tokenizer, a tokenizer directory or a ``vocab.txt``
        (default: the card's pinned DistilBERT tokenizer from the Hub). ``preprocessing``:
        keys overriding the card's (e.g. ``frames``, or sizes for a model of another resolution).
        ``config``: fields of :class:`FrozenInTimeConfig` (e.g. ``num_frames=8,
        load_temporal_fix="bilinear"`` to load a 4-frame release into an 8-frame model)."""
        if _is_pickled_checkpoint(weights):
            model, _ = build_model(FrozenInTimeModel, card, "random", overrides=config)
            state_dict = convert_original_state_dict(read_original_checkpoint(weights), model.config)
            load_state_dict_strict(model, state_dict, str(weights))
        else:
            model, _ = build_model(FrozenInTimeModel, card, weights, overrides=config)
        return cls(model, card, device, tokenizer=tokenizer, preprocessing=preprocessing)

    # -- text -------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer(self._tokenizer_spec)
        return self._tokenizer

    def _load_tokenizer(self, spec: Any):
        from transformers import DistilBertTokenizerFast

        if spec is None:
            from vtzoo.registry.weights import load_tokenizer

            return load_tokenizer(self.preprocessing)
        if isinstance(spec, (str, os.PathLike)):
            path = Path(spec)
            if path.is_file():  # a WordPiece vocab.txt, one token per line, id = line number
                tokens = path.read_text(encoding="utf-8").splitlines()
                # an explicit dict: a vocab_file= keyword is silently ignored by newer transformers
                return DistilBertTokenizerFast(vocab={tok: i for i, tok in enumerate(tokens)}, do_lower_case=True)
            return DistilBertTokenizerFast.from_pretrained(str(path), local_files_only=path.is_dir())
        return spec  # a ready tokenizer object

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
        with torch.inference_mode():
            for i in range(0, len(texts), _TEXT_BATCH):
                ids, mask = self.tokenize(texts[i : i + _TEXT_BATCH])
                out.append(self.model.encode_text(ids.to(self.device), mask.to(self.device)).float().cpu())
        return Embeddings(pooled=torch.cat(out))

    # -- video ------------------------------------------------------------------------------
    @property
    def preprocess(self):
        if self._preprocess is None:
            from vtzoo.video import Preprocess

            self._preprocess = Preprocess.from_card(self.preprocessing)
        return self._preprocess

    def load_clip(self, source: VideoInput) -> tuple[torch.Tensor, dict[str, Any]]:
        """One input -> a preprocessed clip (F, 3, H, W) and its provenance.

        Float torch tensors are clips already preprocessed (normalised, at the model's
        resolution); uint8 tensors and numpy arrays are decoded frames, sampled and
        preprocessed like a video file.
        """
        if isinstance(source, torch.Tensor) and source.is_floating_point():
            if source.dim() != 4:
                raise ValueError(
                    "a float tensor is taken as a preprocessed clip (frames, 3, H, W); got shape "
                    f"{tuple(source.shape)} (pass uint8 frames to have them sampled and preprocessed)"
                )
            return source.float(), {"source": "<tensor>"}
        if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in IMAGE_SUFFIXES:
            return self.load_image(source), {"source": os.fspath(source), "image": True}
        from vtzoo.video import load_video

        pad = bool(self.preprocessing.get("pad_short_videos", True))
        clip = load_video(
            source,
            num_frames=self.num_frames,
            sampling=self.preprocessing.get("sampling", "middle"),
            pad=pad,
            preprocess=self.preprocess,
        )
        frames = clip.frames  # a VideoClip from a pipeline's video.decode step comes back as is
        if pad and frames.shape[0] < self.num_frames:
            # Quirk kept: the original zero-pads a short video to num_frames (after normalisation)
            # and the model attends to the padded frames as if they were real (no frame mask).
            frames = torch.cat([frames, frames.new_zeros(self.num_frames - frames.shape[0], *frames.shape[1:])])
        return frames, {"source": clip.source, "indices": clip.indices, "backend": clip.backend}

    def load_image(self, path: str | os.PathLike) -> torch.Tensor:
        """An image as a one-frame clip (1, 3, H, W), preprocessed like video frames."""
        from PIL import Image, UnidentifiedImageError

        from vtzoo.video import VideoDecodeError

        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except FileNotFoundError:
            raise VideoDecodeError(os.fspath(path), "no such file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoDecodeError(os.fspath(path), f"not a readable image ({exc})") from None
        frames = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0)
        return self.preprocess(frames)

    def _clips(self, videos: VideoInput | Sequence[VideoInput]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        if isinstance(videos, torch.Tensor) and videos.is_floating_point() and videos.dim() == 5:
            return [(clip, {"source": "<tensor>"}) for clip in videos]
        if isinstance(videos, (str, os.PathLike, bytes, bytearray, torch.Tensor, np.ndarray)):
            videos = [videos]
        videos = list(videos)
        if not videos:
            raise ValueError("embed_video needs at least one video (got an empty list)")
        return [self.load_clip(v) for v in videos]

    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        """Joint-space video embeddings (N, D), un-normalised as the original returns them.

        Clips with different frame counts (e.g. images and videos) are run in separate batches:
        the model attends over every frame it is given, so they are never padded to each other.
        """
        clips = self._clips(videos)
        pooled: list[torch.Tensor | None] = [None] * len(clips)
        by_length: dict[int, list[int]] = {}
        for i, (frames, _) in enumerate(clips):
            by_length.setdefault(frames.shape[0], []).append(i)
        with torch.inference_mode():
            for rows in by_length.values():
                for start in range(0, len(rows), _VIDEO_BATCH):
                    part = rows[start : start + _VIDEO_BATCH]
                    batch = torch.stack([clips[i][0] for i in part]).to(self.device)
                    out = self.model.encode_video(batch).float().cpu()
                    for row, i in enumerate(part):
                        pooled[i] = out[row]
        return Embeddings(
            pooled=torch.stack(pooled),  # type: ignore[arg-type]
            extras={
                "num_frames": [clips[i][0].shape[0] for i in range(len(clips))],
                "provenance": [meta for _, meta in clips],
            },
        )

    def similarity(self, text: Embeddings, video: Embeddings) -> torch.Tensor:
        """(n_text, n_video) cosine similarities, as the original's ``sim_matrix``."""
        return sim_matrix(text.pooled.float(), video.pooled.float())

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        frames = num_frames or self.num_frames
        size = self.config.img_size
        return torch.randn(batch_size, frames, self.config.in_chans, size, size)
