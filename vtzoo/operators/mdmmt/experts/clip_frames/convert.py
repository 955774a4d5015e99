"""CLIP releases -> the CLIP frame expert's keys (``towers.`` + :class:`~vtzoo.backbones.clip.CLIPTowers` keys).

OpenAI's ``ViT-B-32.pt`` is a TorchScript archive, which vtzoo does not unpickle; its state dict
saved as ``.safetensors`` (OpenAI keys), or a transformers ``CLIPModel`` folder / file, loads.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.backbones.clip import (
    convert_openai_clip_state_dict,
    convert_transformers_clip_state_dict,
)

PREFIX = "towers."


def convert_openai(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    return {PREFIX + k: v for k, v in convert_openai_clip_state_dict(state_dict).items()}


def convert_transformers(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    return {PREFIX + k: v for k, v in convert_transformers_clip_state_dict(state_dict).items()}


CONVERTERS = {"transformers-clip": convert_transformers, "openai-clip": convert_openai}
