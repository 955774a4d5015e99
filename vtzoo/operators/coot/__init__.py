"""COOT: hierarchical video-text transformers (clip/sentence and video/paragraph levels)."""

from vtzoo.operators.coot.config import AttentionConfig, CootConfig, CootNetworkConfig, MLPConfig, PoolerConfig
from vtzoo.operators.coot.convert import convert_original_state_dict, flatten_original_checkpoint, load_original_checkpoint
from vtzoo.operators.coot.inputs import CootTextFeatures, CootTruncationWarning, CootVideoFeatures
from vtzoo.operators.coot.losses import ContrastiveLoss, CootLoss, CycleConsistencyLoss
from vtzoo.operators.coot.model import CootInputError, CootLevelOutput, CootModel, CootNetwork

__all__ = [
    "AttentionConfig",
    "ContrastiveLoss",
    "CootConfig",
    "CootInputError",
    "CootLevelOutput",
    "CootLoss",
    "CootModel",
    "CootNetwork",
    "CootNetworkConfig",
    "CootTextFeatures",
    "CootTruncationWarning",
    "CootVideoFeatures",
    "CycleConsistencyLoss",
    "MLPConfig",
    "PoolerConfig",
    "convert_original_state_dict",
    "flatten_original_checkpoint",
    "load_original_checkpoint",
]
