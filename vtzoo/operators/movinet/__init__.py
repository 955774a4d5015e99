"""MoViNets A0-A5 (base and stream) with an explicit streaming state."""

from vtzoo.operators.movinet.config import MovinetConfig
from vtzoo.operators.movinet.model import MovinetInputError, MovinetModel, StreamState

__all__ = ["MovinetConfig", "MovinetInputError", "MovinetModel", "StreamState"]
