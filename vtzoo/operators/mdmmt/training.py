"""MDMMT / MMT training: the bidirectional max-margin ranking loss over the similarity matrix.

MMT's ``MaxMarginRankingLoss`` (``fix_norm``): for every caption i and every other video j, and
every video i and every other caption j, ``relu(margin - (s_ii - s_ij))``, averaged over those
pairs. MDMMT trains with the same loss. Similarities are the model's own (MDMMT: dot product of
the mixture-weighted text experts with the video experts; MMT: per-pair renormalised weights).

Video inputs are expert features computed once (``family.features``) and fed to the expert
named ``family.expert`` (default: the config's first) with their times; the other experts are
missing (masked), as for a video without audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily
from vtzoo.training.features import FeatureFamily, FeatureSpec


@dataclass
class MdmmtSettings:
    features: FeatureSpec = field(default_factory=FeatureSpec)
    expert: str | None = None
    margin: float = 0.05


def max_margin_ranking(sims: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean hinge over off-diagonal pairs of both directions (rows: captions, columns: videos)."""
    positive = sims.diagonal()
    off = ~torch.eye(sims.shape[0], dtype=torch.bool, device=sims.device)
    text_side = torch.relu(margin - (positive[:, None] - sims))[off]
    video_side = torch.relu(margin - (positive[None, :] - sims))[off]
    return torch.cat([text_side, video_side]).mean()


class MdmmtTraining(FeatureFamily, TrainingFamily):
    Settings = MdmmtSettings

    def load(self, op, sample, settings: MdmmtSettings, train, rng) -> dict[str, Any]:
        from vtzoo.operators.mdmmt.collate import ExpertSequence

        stored = self.video_features(settings, sample.item)
        expert = settings.expert or op.config.expert_names[0]
        return {"experts": {expert: ExpertSequence(stored["features"], stored["times"].double())},
                "caption": pick_caption(sample, rng)}

    def collate(self, samples):
        return {"experts": [s["experts"] for s in samples], "caption": [s["caption"] for s in samples]}

    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        inputs = op.collate(batch["experts"]).to(op.device)
        video = op.model.encode_video(inputs.features, inputs.features_t, inputs.features_ind, inputs.features_maxpool)
        enc = {k: v.to(op.device) for k, v in op.tokenize(batch["caption"]).items()}
        text = op.model.encode_text(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        return {"t_experts": text.expert_embeddings, "t_weights": text.weights,
                "v_experts": video.expert_embeddings, "v_available": video.available}

    def loss(self, op, encoded, settings: MdmmtSettings) -> torch.Tensor:
        sims = op.model.similarity(encoded["t_experts"].float(), encoded["t_weights"].float(),
                                   encoded["v_experts"].float(), encoded["v_available"].float())
        return max_margin_ranking(sims, settings.margin)

    def video_input(self, op, batch) -> Any:
        return batch["experts"]


FAMILY = MdmmtTraining()
