"""CLIP4Clip: CLIP towers with mean-pooling, LSTM, temporal-transformer or cross-encoder heads."""

from vtzoo.operators.clip4clip.config import CLIP4ClipConfig
from vtzoo.operators.clip4clip.model import CLIP4ClipModel

__all__ = ["CLIP4ClipConfig", "CLIP4ClipModel", "CLIP4ClipOperator"]


def __getattr__(name: str):
    # the operator pulls in the video and tokenizer stack; import it only when asked for
    if name == "CLIP4ClipOperator":
        from vtzoo.operators.clip4clip.operator import CLIP4ClipOperator

        return CLIP4ClipOperator
    raise AttributeError(name)
