"""DRL training: the model's own objective, ``DRLModel.loss``.

(CrossEn(t2v) + CrossEn(v2t)) / 2 over the token-wise interaction's logits scaled by
``exp(logit_scale)``, plus ``cdcr_lambda`` x the channel decorrelation regularisation (CDCR) of
the config (``cdcr``, ``cdcr_alpha1``, ``cdcr_alpha2``), as the original ``main.py`` trains.
"""

from __future__ import annotations

import torch

from vtzoo.training.video import CLIPFrameFamily


class DRLTraining(CLIPFrameFamily):
    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        ids, text_mask = op.tokenize(batch["caption"])
        video_mask = batch["mask"].to(op.device)
        return {"text": op.model.encode_text(ids.to(op.device)), "text_mask": text_mask.to(op.device),
                "video": op.model.encode_video(batch["frames"].to(op.device), video_mask), "video_mask": video_mask}

    def loss(self, op, encoded, settings) -> torch.Tensor:
        return op.model.loss(encoded["text"], encoded["video"], encoded["text_mask"], encoded["video_mask"])


FAMILY = DRLTraining()
