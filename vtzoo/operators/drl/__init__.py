"""DRL (Disentangled Representation Learning for text-video retrieval, Wang et al. 2022)."""

from vtzoo.operators.drl.config import DRLConfig
from vtzoo.operators.drl.convert import convert_original_state_dict, describe_checkpoint
from vtzoo.operators.drl.model import DRLModel

__all__ = ["DRLConfig", "DRLModel", "convert_original_state_dict", "describe_checkpoint"]
