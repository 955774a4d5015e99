"""Frozen in Time (Bain et al., ICCV 2021): space-time transformer + DistilBERT dual encoder."""

from vtzoo.operators.frozen_in_time.config import FrozenInTimeConfig
from vtzoo.operators.frozen_in_time.convert import convert_original_state_dict, fit_temporal_embed
from vtzoo.operators.frozen_in_time.model import FrozenInTimeModel, SpaceTimeTransformer, sim_matrix

__all__ = [
    "FrozenInTimeConfig",
    "FrozenInTimeModel",
    "SpaceTimeTransformer",
    "convert_original_state_dict",
    "fit_temporal_embed",
    "sim_matrix",
]
