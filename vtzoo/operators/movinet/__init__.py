"""MoViNets A0-A5 (base and stream) with an explicit streaming state."""

from vtzoo.operators.movinet.config import MovinetConfig
from vtzoo.operators.movinet.convert import convert_original_state_dict, convert_tf_variables
from vtzoo.operators.movinet.model import MovinetInputError, MovinetModel, StreamState
from vtzoo.operators.movinet.operator import MovinetOperator, kinetics600_labels

__all__ = [
    "MovinetConfig",
    "MovinetInputError",
    "MovinetModel",
    "MovinetOperator",
    "StreamState",
    "convert_original_state_dict",
    "convert_tf_variables",
    "kinetics600_labels",
]
