"""The clip-feature extraction of models defined on clip features (VideoBERT, CBT), named in
their config so a trained model embeds raw video with the extractor it was trained on.

A model config's ``clip_features`` is a mapping (the fields of a training recipe's
``family.features``): ``extractor`` is ``"s3d"`` (with ``fps``, ``window_frames``, ``resize``,
``crop``, ``output``, ``l2_normalize``, ``weights``, ``seed``) or ``"thumbnails"`` (``fps``,
``size``); fields the extractor does not read are ignored, missing ones take the extractor's
defaults. An empty mapping means the paper's extraction: S3D ``mixed_5c`` (1024-d, not
normalised) of non-overlapping 30-frame clips at 20 fps (1.5 s), VideoBERT's and CBT's input.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from vtzoo.backbones.s3d.clips import S3DClips
from vtzoo.backbones.s3d.features import S3DWindowing
from vtzoo.backbones.thumbnails import ThumbnailClips
from vtzoo.errors import ConfigError

EXTRACTORS = ("s3d", "thumbnails")


def paper_windowing(clip_size: int = 224) -> S3DWindowing:
    """VideoBERT's clips: 30 frames at 20 fps, S3D ``mixed_5c`` average-pooled, no L2 norm."""
    return S3DWindowing(fps=20.0, window_frames=30, resize=clip_size, crop=clip_size, output="mixed_5c",
                        l2_normalize=False)


def clip_extractor(spec: Mapping[str, Any], *, clip_size: int = 224, s3d_weights: Any = None, seed: int = 0,
                   device: torch.device | str = "cpu", batch_size: int = 8) -> S3DClips | ThumbnailClips:
    """The extractor ``spec`` names. ``clip_size``, ``s3d_weights`` and ``seed`` (the operator's
    options) define the paper's S3D when ``spec`` is empty; ``s3d_weights`` also replaces the
    weights an S3D ``spec`` names (the extractor's identity then says so)."""
    device = torch.device(device)
    if not spec:
        return S3DClips(paper_windowing(clip_size), s3d_weights, seed, device, batch_size)
    kind = spec.get("extractor", "s3d")
    if kind == "thumbnails":
        fields = {f.name for f in dataclasses.fields(ThumbnailClips)}
        return ThumbnailClips(**{k: v for k, v in spec.items() if k in fields})
    if kind == "s3d":
        weights = s3d_weights if s3d_weights is not None else spec.get("weights", "random")
        return S3DClips(S3DWindowing.from_dict(dict(spec)), weights, int(spec.get("seed", 0)), device, batch_size)
    raise ConfigError(f"config clip_features.extractor {kind!r} is not one of {', '.join(EXTRACTORS)}")


class ClipFeatureInput:
    """Mixin of operators defined on clip features (config ``clip_features`` and ``feature_dim``,
    options ``clip_size`` and ``s3d_weights``): :attr:`clips` is their extractor, built on first
    use; a random S3D is seeded ``seed + clip_seed_offset``, apart from the model."""

    clip_seed_offset = 1
    _clips: S3DClips | ThumbnailClips | None = None

    @property
    def clips(self) -> S3DClips | ThumbnailClips:
        if self._clips is None:
            clips = clip_extractor(self.config.clip_features, clip_size=self.options.clip_size,
                                   s3d_weights=self.options.s3d_weights, seed=self.options.seed + self.clip_seed_offset,
                                   device=self.device, batch_size=self.batch_size)
            if clips.dim != self.config.feature_dim:  # refused before any video is decoded for nothing
                raise ConfigError(f"{self.name}: the clip features of {clips.extractor_id} are {clips.dim}-d, but the "
                                  f"model reads {self.config.feature_dim}-d features (config feature_dim)")
            self._clips = clips
        return self._clips

    def use_clip_features(self, spec: Mapping[str, Any]) -> None:
        """Make ``spec`` the extraction of raw video, recorded in the config so a saved model keeps it."""
        self.model.config.clip_features = dict(spec)
        self._clips = None
