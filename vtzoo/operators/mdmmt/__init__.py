"""MDMMT (Dzabraev et al. 2021) and MMT (Gabeur et al. 2020): retrieval over expert features."""

from vtzoo.operators.mdmmt.collate import (
    ExpertBatch,
    ExpertSequence,
    collate_mdmmt,
    collate_mmt,
)
from vtzoo.operators.mdmmt.config import MdmmtConfig
from vtzoo.operators.mdmmt.convert import convert_original_state_dict
from vtzoo.operators.mdmmt.model import MdmmtModel

__all__ = [
    "ExpertBatch",
    "ExpertSequence",
    "MdmmtConfig",
    "MdmmtModel",
    "collate_mdmmt",
    "collate_mmt",
    "convert_original_state_dict",
]
