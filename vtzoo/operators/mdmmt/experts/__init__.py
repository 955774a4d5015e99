"""MDMMT's feature experts: CLIP frames (shared CLIP towers), VGGish audio and irCSN-152 motion."""

from vtzoo.operators.mdmmt.experts.ircsn import IrCsnConfig, IrCsnModel
from vtzoo.operators.mdmmt.experts.vggish import VggishConfig, VggishModel

__all__ = ["IrCsnConfig", "IrCsnModel", "VggishConfig", "VggishModel"]
