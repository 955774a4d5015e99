"""The CLIP front end of CLIP4Clip and DRL: texts to token ids, videos to frames, as their originals.

Both originals feed OpenAI's CLIP the same way, so both operators use these:

* :func:`token_ids`: CLIP BPE ids as the originals' dataloaders build them: SOT, at most
  ``max_words - 2`` word pieces, EOT, zero-padded to ``max_words``. A longer text keeps its first
  pieces and its EOT, with a :class:`TextTruncatedWarning`.
* :func:`video_input`: the operator's :class:`~vtzoo.video.VideoInputSpec`: the card's sampling
  (default: 1 frame per second) thinned to ``max_frames``, the short side resized (bicubic) and
  centre-cropped to the model's resolution, CLIP's mean/std.
* :func:`video_batch`: what ``embed_video`` takes (paths, bytes, decoded clips, a preprocessed
  (B, T, 3, H, W) tensor with an optional (B, T) mask, or ``{"video": ..., "video_mask": ...}``)
  as frames, mask and provenance, padded to ``max_frames`` like the originals' dataloaders.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from vtzoo.backbones.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from vtzoo.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.operators.base import Operator
    from vtzoo.video import VideoInputSpec

# what a card may leave out: OpenAI's CLIP preprocessing, and the originals' 1 frame per second
CLIP_PREPROCESSING = {"fps": 1, "interpolation": "bicubic", "mean": list(OPENAI_CLIP_MEAN), "std": list(OPENAI_CLIP_STD)}
TENSOR = "<tensor>"


class TextTruncatedWarning(UserWarning):
    """A text had more tokens than ``max_words`` and was cut (keeping its end-of-text token)."""


def token_ids(tokenizer: Any, texts: Sequence[str], max_words: int, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (N, max_words) int64, as the originals' dataloaders.

    ``tokenizer`` is a transformers ``CLIPTokenizer`` (it adds SOT and EOT); ``owner`` names the
    operator in the truncation warning.
    """
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    ids = torch.zeros(len(encoded), max_words, dtype=torch.long)
    mask = torch.zeros_like(ids)
    cut = []
    for row, tokens in enumerate(encoded):
        if len(tokens) > max_words:
            tokens = tokens[: max_words - 1] + tokens[-1:]  # SOT + the first max_words - 2 pieces + EOT
            cut.append(row)
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    if cut:
        warnings.warn(
            f"{len(cut)} text(s) exceed {owner}'s max_words={max_words} tokens and were truncated as the original "
            f"does, keeping SOT, the first {max_words - 2} word pieces and EOT (rows {cut[:10]}"
            f"{'...' if len(cut) > 10 else ''})",
            TextTruncatedWarning,
            stacklevel=3,
        )
    return ids, mask


def video_input(preprocessing: Mapping[str, Any], resolution: int, max_frames: int) -> "VideoInputSpec":
    """The card's sampling and preprocessing at the model's ``resolution`` and ``max_frames``."""
    from vtzoo.video import VideoInputSpec

    return VideoInputSpec.from_card(
        {**CLIP_PREPROCESSING, **preprocessing}, frames=max_frames, resize=resolution, crop=resolution
    )


def video_batch(
    operator: "Operator", videos: Any, mask: Any = None, frame_limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
    """``embed_video``'s argument as frames (B, T, 3, H, W), mask (B, T) and provenance.

    Decoded videos are padded to at least ``config.max_frames`` frames (the originals' layout);
    ``frame_limit`` is the most frames the model's position tables take (None: no limit).
    """
    from vtzoo.operators.base import input_provenance

    if isinstance(videos, Mapping):
        pixels = videos.get("video")
        if not isinstance(pixels, torch.Tensor):
            raise InputError("a dict video input needs a tensor (B, T, 3, H, W) under 'video'", "<dict>")
        mask = videos.get("video_mask") if mask is None else mask
        videos = pixels
    if isinstance(videos, torch.Tensor) and videos.dim() == 5 and videos.is_floating_point():
        pixels, mask = _checked_tensor(operator, videos, mask, frame_limit)
        return pixels, mask, input_provenance(TENSOR, len(pixels))
    if isinstance(videos, torch.Tensor) and videos.dim() not in (4, 5):
        raise InputError(
            f"{operator.name} expects a preprocessed video tensor (B, T, 3, H, W), a decoded clip (T, C, H, W) or "
            f"{{'video': ..., 'video_mask': ...}}, got a tensor of shape {tuple(videos.shape)}",
            TENSOR,
        )
    if mask is not None:
        raise InputError("mask= only goes with a preprocessed (B, T, 3, H, W) tensor")
    clips = _decoded_clips(operator, videos)
    from vtzoo.video import stack_clips

    pixels, mask = stack_clips(clips, pad_to=max(operator.config.max_frames, max(len(c) for c in clips)))
    _check_frames(pixels.shape[1], frame_limit, operator.name, None)
    return pixels, mask, [clip.provenance() for clip in clips]


def _decoded_clips(operator: "Operator", videos: Any) -> list[Any]:
    from vtzoo.operators.base import item_source, video_items

    clips = []
    for item in video_items(videos):
        try:
            clips.append(operator.load_clip(item))
        except InputError as exc:
            raise exc.with_source(item_source(item)) from None
    return clips


def _checked_tensor(
    operator: "Operator", pixels: torch.Tensor, mask: Any, frame_limit: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    size = operator.config.clip.image_resolution
    if pixels.shape[2] != 3 or tuple(pixels.shape[-2:]) != (size, size):
        raise InputError(
            f"{operator.name} expects preprocessed video as (B, T, 3, {size}, {size}) (batch, frames, RGB, height, "
            f"width), got shape {tuple(pixels.shape)}",
            TENSOR,
        )
    if mask is None:
        mask = torch.ones(pixels.shape[:2], dtype=torch.long)
    mask = torch.as_tensor(mask).long()
    if tuple(mask.shape) != tuple(pixels.shape[:2]):
        raise InputError(f"mask must be (B, T) = {tuple(pixels.shape[:2])}, got {tuple(mask.shape)}", TENSOR)
    if bool((mask.sum(-1) == 0).any()):
        raise InputError("every video needs at least one valid frame (a video_mask row is all zeros)", TENSOR)
    _check_frames(pixels.shape[1], frame_limit, operator.name, TENSOR)
    return pixels, mask


def _check_frames(frames: int, limit: int | None, name: str, source: str | None) -> None:
    if limit is not None and frames > limit:
        raise InputError(f"{name} takes at most {limit} frames per video (its position table), got {frames}", source)
