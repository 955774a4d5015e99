"""The ``ircsn152`` operator: a video -> one 2048-d irCSN-152 feature per 32-frame clip.

MDMMT's ``VIDEO`` expert: frames at 32 fps (short side 224, centre crop 224, Kinetics mean/std),
non-overlapping clips of 32 frames (1 s), each clip's average-pooled layer-4 feature (the fc head
dropped). A short last clip is filled by resampling the leftover frames to 32, as the original
does. Long videos are decoded ``window_seconds`` at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vtzoo.operators.base import input_provenance, item_source
from vtzoo.operators.mdmmt.collate import ExpertSequence
from vtzoo.operators.mdmmt.experts.expert import (
    ExpertOperator,
    FrameExpertOptions,
    is_decoded,
    segment_timings,
)
from vtzoo.operators.mdmmt.experts.ircsn152.model import MEAN, STD, IrCsnModel
from vtzoo.registry.operators import register_operator


@dataclass
class IrCsnOptions(FrameExpertOptions):
    """``frames_per_clip`` (None: the card's 32) and ``window_seconds``: how much video is decoded at a time."""

    frames_per_clip: int | None = None
    window_seconds: float = 8.0


@register_operator("ircsn152")
class IrCsnOperator(ExpertOperator):
    summary = "irCSN-152 clip features (Tran et al. 2019), MDMMT's motion expert"
    default_variant = "ig65m"
    model_class = IrCsnModel
    options_class = IrCsnOptions
    default_batch_size = 2  # clips per forward pass: a 32-frame clip at 224 px is large

    def setup(self) -> None:
        prep = self.preprocessing
        self.fps = float(self.options.fps or prep.get("fps", 32.0))
        self.size = int(self.options.size or prep.get("crop", 224))
        self.frames_per_clip = int(self.options.frames_per_clip or prep.get("frames_per_clip", 32))

    @property
    def dim(self) -> int:
        return 2048

    @property
    def video_input(self):
        from vtzoo.video import Preprocess, VideoInputSpec

        preprocess = Preprocess(resize=self.size, crop=self.size, mean=MEAN, std=STD, interpolation="bicubic")
        return VideoInputSpec(sampling={"fps": self.fps}, preprocess=preprocess)

    def clip_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) frames -> (clips, 3, frames_per_clip, H, W); a short tail is resampled."""
        n, per = frames.shape[0], self.frames_per_clip
        full = (n // per) * per
        parts = [frames[:full]]
        if n > full:
            # the original stretches the leftover frames to a whole clip: ceil(linspace(n1, n-1, 32))
            idx = np.ceil(np.linspace(full, n - 1, per)).astype(np.int64)
            parts.append(frames[torch.from_numpy(idx)])
        clips = torch.cat(parts).reshape(-1, per, *frames.shape[1:])
        return clips.permute(0, 2, 1, 3, 4)

    def _decode(self, source: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        from vtzoo.video import VideoClip, probe_video

        spec = self.video_input
        if isinstance(source, VideoClip):
            clip = self.load_clip(source)
            return clip.frames[clip.mask.bool()], clip.provenance()
        if is_decoded(source):
            from vtzoo.video import load_video

            # frames of unknown rate are taken as sampled at the expert's own rate
            clip = load_video(source, fps=self.fps, preprocess=spec.preprocess, source_fps=self.options.source_fps or self.fps)
            return clip.frames, clip.provenance()
        duration = probe_video(source).duration
        # windows a whole number of clips long keep every clip inside one window
        step = max(1, round(self.options.window_seconds * self.fps / self.frames_per_clip)) * self.frames_per_clip / self.fps
        chunks, record = [], {}
        for k in range(max(1, math.ceil(duration / step - 1e-9))):
            start, end = k * step, min((k + 1) * step, duration)
            if end <= start:
                break
            clip = spec.load(source, start=start, end=end)
            chunks.append(clip.frames)
            part = clip.provenance()
            record = part if not record else {**record, "indices": record["indices"] + part["indices"],
                                              "timestamps": record["timestamps"] + part["timestamps"]}  # fmt: skip
        return torch.cat(chunks), record

    def extract(self, video: Any) -> tuple[ExpertSequence | None, dict[str, Any]]:
        frames, record = self._decode(video)
        record = {**input_provenance(item_source(video))[0], **record}
        if frames.shape[0] == 0:
            return None, record
        feats = self._encode(self.model.features, self.clip_frames(frames)).numpy()
        return ExpertSequence(feats, segment_timings(feats.shape[0], self.frames_per_clip / self.fps)), record

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> list[Any]:
        """Random uint8 frames of one clip (decoded input at the expert's own rate)."""
        rng = np.random.RandomState(0)
        frames = int(num_frames or self.frames_per_clip)
        return [rng.randint(0, 256, (frames, self.size, self.size, 3), dtype=np.uint8) for _ in range(batch_size)]

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """One bottleneck per stage, 4-frame clips at 4 fps, 32 px."""
        return {"layers": [1, 1, 1, 1], "fps": 4.0, "frames_per_clip": 4, "size": 32}
