"""VideoCLIP: separate video and text BERT towers over per-second S3D features, mean-pooled, dot product."""

from vtzoo.operators.videoclip.config import VideoCLIPConfig
from vtzoo.operators.videoclip.convert import convert_original_state_dict, read_original_checkpoint
from vtzoo.operators.videoclip.model import (
    TowerOutput,
    VideoCLIPInputError,
    VideoCLIPModel,
    VideoTruncationWarning,
)

__all__ = [
    "TowerOutput",
    "VideoCLIPConfig",
    "VideoCLIPInputError",
    "VideoCLIPModel",
    "VideoCLIPOperator",
    "VideoTruncationWarning",
    "convert_original_state_dict",
    "read_original_checkpoint",
]


def __getattr__(name: str):
    # the operator pulls in the video decoding and tokenizer stack; import it only when asked for
    if name == "VideoCLIPOperator":
        from vtzoo.operators.videoclip.operator import VideoCLIPOperator

        return VideoCLIPOperator
    raise AttributeError(name)
