"""Precomputed COOT inputs and how they become the original's batch layout.

COOT is defined on features, at two levels:

* a video = the feature sequence of the WHOLE video (one feature per step; S3D gives one per
  second) plus its clips, each a range of steps of that same sequence::

      CootVideoFeatures(features=(T, D) tensor, clips=[(start, stop), ...])   # stop exclusive
      CootVideoFeatures.from_seconds(features, duration=61.0, segments=[(0, 9.5), (9.5, 30)])

* a paragraph = the token features of the whole paragraph (BERT, one pass) plus how many tokens
  each sentence has (sentence features are slices of the paragraph's)::

      CootTextFeatures(features=(L, D) tensor, sentence_lengths=[7, 5, 9])

Plain dicts with the same field names are accepted too. Sequences longer than ``max_frames``
(80 in the paper configs; the whole video and every clip) are subsampled with the original's
validation rule (centres of ``max_frames`` equal intervals), with a :class:`CootTruncationWarning`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from vtzoo.operators.coot.model import CootInputError, pad_sequences


class CootTruncationWarning(UserWarning):
    """A video, clip or paragraph was longer than COOT's configured maximum and was shortened."""


@dataclass
class CootVideoFeatures:
    """Whole-video features ``(T, D)`` and clip step ranges ``[(start, stop), ...]`` (default: one clip, all steps)."""

    features: torch.Tensor
    clips: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.features = torch.as_tensor(self.features, dtype=torch.float32)
        if self.features.dim() != 2:
            raise CootInputError(f"video features must be (T, D), got shape {tuple(self.features.shape)}")
        steps = self.features.shape[0]
        if steps == 0:
            raise CootInputError("the video has zero frames (zero feature steps)")
        if not self.clips:
            self.clips = [(0, steps)]
        clips = []
        for i, clip in enumerate(self.clips):
            start, stop = (int(v) for v in clip)
            if stop <= start:
                raise CootInputError(f"clip {i} ({start}, {stop}) has zero frames")
            if start < 0 or stop > steps:
                raise CootInputError(f"clip {i} ({start}, {stop}) is outside the video's {steps} steps")
            clips.append((start, stop))
        self.clips = clips

    @classmethod
    def from_seconds(
        cls,
        features: torch.Tensor,
        duration: float,
        segments: Sequence[tuple[float, float]],
        add_stop_frame: int = 2,
        expand_segments: int = 0,
    ) -> "CootVideoFeatures":
        """Clips from annotated segments in seconds, exactly as the original's dataset does it.

        ``fps = steps / duration``; start = floor(fps * start_sec), stop = ceil(fps * stop_sec) +
        ``add_stop_frame`` (YouCook2 2, ActivityNet 1), clamped to the video, then widened to at
        least ``expand_segments`` steps (ActivityNet 10); reversed segments are swapped.
        """
        features = torch.as_tensor(features, dtype=torch.float32)
        steps = int(features.shape[0])
        if steps == 0:
            raise CootInputError("the video has zero frames (zero feature steps)")
        if not duration or duration <= 0:
            raise CootInputError(f"duration must be positive seconds, got {duration!r}")
        fps = steps / duration
        clips = []
        for start_sec, stop_sec in segments:
            if stop_sec < start_sec:
                start_sec, stop_sec = stop_sec, start_sec
            start = int(np.floor(fps * start_sec))
            stop = min(int(np.ceil(fps * stop_sec)) + add_stop_frame, steps)
            start, stop = expand_segment(steps, expand_segments, start, stop)
            clips.append((start, stop))
        return cls(features, clips)

    @classmethod
    def coerce(cls, value: Any) -> "CootVideoFeatures":
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            if "segments" in value:
                return cls.from_seconds(value["features"], value["duration"], value["segments"],
                                        value.get("add_stop_frame", 2), value.get("expand_segments", 0))  # fmt: skip
            return cls(value["features"], list(value.get("clips") or []))
        raise CootInputError(f"not COOT video features: {type(value).__name__}")


def expand_segment(steps: int, minimum: int, start: int, stop: int) -> tuple[int, int]:
    """Widen [start, stop) to ``minimum`` steps: one step earlier, then one later, alternately."""
    minimum = min(minimum, steps)
    length = stop - start
    while length < minimum:
        if start > 0:
            start, length = start - 1, length + 1
        if length == minimum:
            break
        if stop < steps:
            stop, length = stop + 1, length + 1
    return start, stop


@dataclass
class CootTextFeatures:
    """Token features of a whole paragraph ``(L, D)`` and each sentence's token count (summing to L)."""

    features: torch.Tensor
    sentence_lengths: list[int]
    sentences: list[str] | None = None  # the text, when known (provenance)
    truncated: bool = False

    def __post_init__(self) -> None:
        self.features = torch.as_tensor(self.features, dtype=torch.float32)
        if self.features.dim() != 2:
            raise CootInputError(f"text features must be (L, D), got shape {tuple(self.features.shape)}")
        self.sentence_lengths = [int(n) for n in self.sentence_lengths]
        if not self.sentence_lengths:
            raise CootInputError("a paragraph needs at least one sentence")
        if any(n <= 0 for n in self.sentence_lengths):
            raise CootInputError(f"every sentence needs at least one token, got lengths {self.sentence_lengths}")
        if sum(self.sentence_lengths) != self.features.shape[0]:
            raise CootInputError(f"sentence lengths {self.sentence_lengths} sum to {sum(self.sentence_lengths)}, but "
                                 f"the paragraph has {self.features.shape[0]} token features")  # fmt: skip

    def sentence_features(self) -> list[torch.Tensor]:
        return list(torch.split(self.features, self.sentence_lengths))

    @classmethod
    def coerce(cls, value: Any) -> "CootTextFeatures":
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls(value["features"], list(value["sentence_lengths"]))
        raise CootInputError(f"not COOT text features: {type(value).__name__}")


def subsample_indices(length: int, target: int) -> np.ndarray:
    """The original's validation sampling: floor of the centres of ``target`` equal intervals."""
    starts = np.linspace(0, length, target, endpoint=False)
    return np.floor(starts + length / target / 2).astype(int)


def limit_steps(features: torch.Tensor, max_frames: int, what: str) -> torch.Tensor:
    """Subsample a (T, D) sequence to ``max_frames`` steps (warned) as the original does."""
    if max_frames is None or max_frames <= 0 or features.shape[0] <= max_frames:
        return features
    warnings.warn(
        f"COOT: {what} has {features.shape[0]} feature steps; max_frames={max_frames}, so {max_frames} steps are "
        "sampled at the centres of equal intervals (the original's evaluation rule)",
        CootTruncationWarning,
        stacklevel=4,
    )
    return features[torch.from_numpy(subsample_indices(features.shape[0], max_frames))]


def limit_count(count: int, max_count: int | None, what: str) -> int:
    """How many clips / sentences to keep (the first ones), warning when some are dropped."""
    if max_count is None or count <= max_count:
        return count
    warnings.warn(f"COOT: {what} has {count} items; only the first {max_count} are encoded (max_clips)",
                  CootTruncationWarning, stacklevel=4)  # fmt: skip
    return max_count


def video_batch(videos: Sequence[CootVideoFeatures], feature_dim: int, max_frames: int,
                max_clips: int | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Videos -> the original batch fields (``vid_feat``, ``clip_feat`` flattened, masks True = padding)."""
    whole, clips, counts = [], [], []
    for n, video in enumerate(videos):
        if video.features.shape[-1] != feature_dim:
            raise CootInputError(f"video {n}: features have {video.features.shape[-1]} values per step; this COOT "
                                 f"model takes {feature_dim}")  # fmt: skip
        whole.append(limit_steps(video.features, max_frames, f"video {n}"))
        keep = limit_count(len(video.clips), max_clips, f"video {n}")
        for i, (start, stop) in enumerate(video.clips[:keep]):
            clips.append(limit_steps(video.features[start:stop], max_frames, f"video {n} clip {i}"))
        counts.append(keep)
    vid, vid_mask, vid_len = pad_sequences(whole)
    clip, clip_mask, clip_len = pad_sequences(clips)
    return {"vid_feat": vid, "vid_feat_mask": vid_mask, "vid_feat_len": vid_len, "clip_feat": clip,
            "clip_feat_mask": clip_mask, "clip_feat_len": clip_len, "clip_num": torch.tensor(counts)}  # fmt: skip


def text_batch(paragraphs: Sequence[CootTextFeatures], feature_dim: int,
               max_sentences: int | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Paragraphs -> the original batch fields (``par_feat``, ``sent_feat`` flattened, masks True = padding)."""
    whole, sentences, counts = [], [], []
    for n, par in enumerate(paragraphs):
        if par.features.shape[-1] != feature_dim:
            raise CootInputError(f"paragraph {n}: token features have {par.features.shape[-1]} values; this COOT "
                                 f"model takes {feature_dim}")  # fmt: skip
        whole.append(par.features)
        keep = limit_count(len(par.sentence_lengths), max_sentences, f"paragraph {n}")
        sentences.extend(par.sentence_features()[:keep])
        counts.append(keep)
    par, par_mask, par_len = pad_sequences(whole)
    sent, sent_mask, sent_len = pad_sequences(sentences)
    return {"par_feat": par, "par_feat_mask": par_mask, "par_feat_len": par_len, "sent_feat": sent,
            "sent_feat_mask": sent_mask, "sent_feat_len": sent_len, "sent_num": torch.tensor(counts)}  # fmt: skip


def split_seconds(duration: float, clip_seconds: float) -> list[tuple[float, float]]:
    """Consecutive segments of ``clip_seconds`` covering ``duration``; a last piece shorter than
    half a segment joins the one before it (no slivers of a few frames)."""
    if clip_seconds <= 0:
        raise CootInputError(f"clip_seconds must be positive, got {clip_seconds}")
    count = max(1, math.ceil(duration / clip_seconds - 1e-9))
    if count > 1 and duration - (count - 1) * clip_seconds < clip_seconds / 2:
        count -= 1
    bounds = [i * clip_seconds for i in range(count)] + [duration]
    return list(zip(bounds[:-1], bounds[1:]))
