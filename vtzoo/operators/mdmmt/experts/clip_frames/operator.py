"""The ``clip_frames`` operator: a video -> one CLIP image feature per frame at 1 fps.

MDMMT's ``CLIP`` expert: OpenAI CLIP ViT-B/32 ``encode_image`` (projected, not normalised) on
frames at 1 fps, short side 228, centre crop 228, CLIP mean/std. The stride-32 patch conv of a
224-input ViT reads only the first 224 rows/columns of a 228 crop, so those are what the towers
get. Timings [k, k + 1]. The original ran CLIP's fp16 GPU model; vtzoo computes in the
operator's precision (fp32 for parity).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vtzoo.operators.base import input_provenance, item_source
from vtzoo.operators.mdmmt.collate import ExpertSequence
from vtzoo.operators.mdmmt.experts.clip_frames.model import ClipFramesModel
from vtzoo.operators.mdmmt.experts.expert import (
    ExpertOperator,
    FrameExpertOptions,
    is_decoded,
    segment_timings,
)
from vtzoo.registry.operators import register_operator


@register_operator("clip_frames")
class ClipFramesOperator(ExpertOperator):
    summary = "CLIP image features of frames at 1 fps (Radford et al. 2021), MDMMT's CLIP expert"
    default_variant = "vit-b32"
    model_class = ClipFramesModel
    options_class = FrameExpertOptions

    def setup(self) -> None:
        prep = self.preprocessing
        self.fps = float(self.options.fps or prep.get("fps", 1.0))
        self.size = int(self.options.size or prep.get("crop", 228))
        self.model.usable_size(self.size)  # a crop the ViT cannot read fails here, not at the first video

    @property
    def dim(self) -> int:
        return int(self.config.clip.embed_dim)

    @property
    def video_input(self):
        from vtzoo.backbones.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
        from vtzoo.video import Preprocess, VideoInputSpec

        preprocess = Preprocess(resize=self.size, crop=self.size, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD,
                                interpolation="bicubic")  # fmt: skip
        return VideoInputSpec(sampling={"fps": self.fps}, preprocess=preprocess)

    def extract(self, video: Any) -> tuple[ExpertSequence | None, dict[str, Any]]:
        from vtzoo.video import VideoClip, load_video

        if isinstance(video, VideoClip):
            clip = self.load_clip(video)
        else:
            # frames of unknown rate are taken as sampled at the expert's own rate
            rate = {"source_fps": self.options.source_fps or self.fps} if is_decoded(video) else {}
            clip = load_video(video, fps=self.fps, preprocess=self.video_input.preprocess, **rate)
        feats = self._encode(self.model, clip.frames[clip.mask.bool()]).numpy()
        record = {**input_provenance(item_source(video))[0], **clip.provenance()}
        return ExpertSequence(feats, segment_timings(feats.shape[0], 1.0 / self.fps)), record

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> list[Any]:
        """Random uint8 frames (decoded input at the expert's own rate), 8 per item by default."""
        rng = np.random.RandomState(0)
        return [rng.randint(0, 256, (num_frames or 8, self.size, self.size, 3), dtype=np.uint8) for _ in range(batch_size)]

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """A one-layer 64-wide CLIP (the real CLIP vocabulary size), 32 px images from a 36 px crop."""
        clip = {"embed_dim": 32, "image_resolution": 32, "vision_layers": 1, "vision_width": 64, "vision_patch_size": 16,
                "vision_heads": 1, "transformer_width": 64, "transformer_heads": 1, "transformer_layers": 1}  # fmt: skip
        return {"clip": clip, "size": 36}
