"""COOT: hierarchical video-text transformers (clip/sentence and video/paragraph levels)."""

from vtzoo.operators.coot.config import AttentionConfig, CootConfig, CootNetworkConfig, MLPConfig, PoolerConfig
from vtzoo.operators.coot.convert import convert_original_state_dict, flatten_original_checkpoint, load_original_checkpoint
from vtzoo.operators.coot.losses import ContrastiveLoss, CootLoss, CycleConsistencyLoss
from vtzoo.operators.coot.model import CootInputError, CootModel, CootNetwork

__all__ = [
    "AttentionConfig",
    "ContrastiveLoss",
    "CootConfig",
    "CootInputError",
    "CootLoss",
    "CootModel",
    "CootNetwork",
    "CootNetworkConfig",
    "CycleConsistencyLoss",
    "MLPConfig",
    "PoolerConfig",
    "convert_original_state_dict",
    "flatten_original_checkpoint",
    "load_original_checkpoint",
]
