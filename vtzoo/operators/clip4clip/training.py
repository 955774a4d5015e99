"""CLIP4Clip training: symmetric cross-entropy over ``logit_scale x cosine`` of every text-video pair.

The original (``modeling.py``, ``CrossEn``) scores the batch's captions against its videos with the
head's own logits (``exp(logit_scale) * cos`` for meanP / seqLSTM / seqTransf, the cross encoder's
logit for tightTransf) and averages the cross-entropy of the rows (text -> video) and columns
(video -> text). ``logit_scale`` is kept <= ln 100 as in CLIP.
"""

from __future__ import annotations

import math
import torch

from vtzoo.training.video import CLIPFrameFamily, symmetric_cross_entropy

MAX_LOGIT_SCALE = math.log(100.0)


class CLIP4ClipTraining(CLIPFrameFamily):
    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        model = op.model
        ids, _ = op.tokenize(batch["caption"])
        text = model.encode_text(ids.to(op.device)).pooled
        frames = model.encode_frames(batch["frames"].to(op.device))
        mask = batch["mask"].to(op.device)
        if model.config.loose:
            return {"text": text, "video": model.video_vector(frames, mask)}
        return {"text": text, "frames": frames, "mask": mask}

    def loss(self, op, encoded, settings) -> torch.Tensor:
        model = op.model
        with torch.no_grad():
            model.clip.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
        if model.config.loose:
            logits = model.loose_logits(encoded["text"], encoded["video"])
        else:
            logits = model.cross_logits(encoded["text"], encoded["frames"], encoded["mask"])
        return symmetric_cross_entropy(logits)


FAMILY = CLIP4ClipTraining()
