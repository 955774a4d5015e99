"""Checkpoint converters for CLIP4Clip (``CONVERTERS``, found by :class:`~vtzoo.modeling.PretrainedModel`).

Three formats:

* ``original``: what the original training script saves (``pytorch_model.bin.<epoch>``): a flat
  state dict with the OpenAI CLIP layout under ``clip.`` (fp16 for conv/linear/attention
  weights, cast to float32 here) and the head at top level (``frame_position_embeddings``,
  ``transformerClip.resblocks.N``, ``lstm_visual``, ``cross.*``, ``similarity_dense``).
* ``openai-clip``: a plain OpenAI CLIP state dict (``visual.*``, ``transformer.*``, ...), for
  zero-shot use.
* ``transformers-clip``: a transformers ``CLIPModel`` state dict (e.g. ``model.safetensors`` of
  ``openai/clip-vit-base-patch32``), for zero-shot use.

The two CLIP-only formats give CLIP's weights only (and the 3D patch kernel, inflated from the
2D one as the original does): a :class:`~vtzoo.modeling.PartialStateDict` whose head the model
initialises the way the original starts fine-tuning (:meth:`CLIP4ClipModel.init_like_original`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch

from vtzoo.backbones.clip import (
    PatchEmbedding3d,
    convert_openai_clip_state_dict,
    convert_transformers_clip_state_dict,
)
from vtzoo.backbones.cross import convert_original_cross_encoder, convert_original_transformer
from vtzoo.modeling import PartialStateDict
from vtzoo.operators.clip4clip.model import HEAD_MODULES

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.operators.clip4clip.config import CLIP4ClipConfig

StateDict = dict[str, torch.Tensor]


def _float(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: "CLIP4ClipConfig") -> StateDict:
    """An original CLIP4Clip checkpoint -> vtzoo keys (float32).

    Keys that belong to neither CLIP nor a head are passed through unchanged, so loading names
    them as unexpected instead of silently ignoring them (the original only logs them).
    """
    sd = _float(state_dict)
    if "clip.visual.proj" not in sd:
        raise ValueError("not an original CLIP4Clip checkpoint: no 'clip.visual.proj' key")
    out = {f"clip.{k}": v for k, v in convert_openai_clip_state_dict(sd, prefix="clip.", strict=True).items()}
    if "frame_position_embeddings.weight" in sd:
        out["frame_position_embeddings.weight"] = sd["frame_position_embeddings.weight"]
    out.update(convert_original_transformer(sd, "transformerClip.", "transformerClip."))
    if any(k.startswith("cross.") for k in sd):
        out.update(convert_original_cross_encoder(sd, "cross.", "cross."))
    used_prefixes = ("clip.", "transformerClip.", "cross.", "frame_position_embeddings.")
    for key, value in sd.items():
        if key.startswith(("lstm_visual.", "similarity_dense.")) or not key.startswith(used_prefixes):
            out[key] = value
    return out


def convert_openai_clip_checkpoint(state_dict: Mapping[str, torch.Tensor], config: "CLIP4ClipConfig") -> PartialStateDict:
    """A plain OpenAI CLIP state dict -> CLIP4Clip's CLIP (the head is the model's to initialise)."""
    # strict: every key must be CLIP's, so a fine-tuned CLIP4Clip checkpoint never loads here
    # with its head silently dropped
    return _clip_only(convert_openai_clip_state_dict(state_dict, prefix="", strict=True), config)


def convert_transformers_clip_checkpoint(state_dict: Mapping[str, torch.Tensor], config: "CLIP4ClipConfig") -> PartialStateDict:
    """A transformers ``CLIPModel`` state dict -> CLIP4Clip's CLIP."""
    clip = convert_transformers_clip_state_dict(state_dict)
    leftover = sorted(k for k in state_dict if k not in clip and not k.endswith("position_ids"))
    if leftover:
        raise ValueError(f"not a transformers CLIPModel state dict; unexpected keys: {leftover[:10]}")
    return _clip_only(clip, config)


def _clip_only(clip: StateDict, config: "CLIP4ClipConfig") -> PartialStateDict:
    """CLIP weights (CLIPTowers keys) under ``clip.``; the 3D patch kernel inflated from the 2D one."""
    clip = dict(clip)
    if config.linear_patch == "3d" and "patch_embedding_3d.weight" not in clip:
        clip["patch_embedding_3d.weight"] = PatchEmbedding3d.inflate(clip["vision_model.embeddings.patch_embedding.weight"])
    return PartialStateDict({f"clip.{k}": v for k, v in clip.items()}, initialised=tuple(f"{name}." for name in HEAD_MODULES))


CONVERTERS = {
    "original": convert_original_state_dict,
    "openai-clip": convert_openai_clip_checkpoint,
    "transformers-clip": convert_transformers_clip_checkpoint,
}
