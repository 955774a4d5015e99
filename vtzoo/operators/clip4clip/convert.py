"""Checkpoint converters for CLIP4Clip.

Three formats:

* ``original``: what the original training script saves (``pytorch_model.bin.<epoch>``): a flat
  state dict with the OpenAI CLIP layout under ``clip.`` (fp16 for conv/linear/attention
  weights, cast to float32 here) and the head at top level (``frame_position_embeddings``,
  ``transformerClip.resblocks.N``, ``lstm_visual``, ``cross.*``, ``similarity_dense``).
* ``openai-clip``: a plain OpenAI CLIP state dict (``visual.*``, ``transformer.*``, ...), for
  zero-shot use.
* ``transformers-clip``: a transformers ``CLIPModel`` state dict (e.g. ``model.safetensors`` of
  ``openai/clip-vit-base-patch32``), for zero-shot use.

For the two CLIP-only formats the head is initialised the way the original starts fine-tuning
(its hard-coded "initialization trick"): ``frame_position_embeddings`` = CLIP's text position
embedding; ``transformerClip`` blocks (seqTransf) and the ``cross`` blocks (tightTransf) =
the first ``cross_num_hidden_layers`` text transformer blocks; ``cross`` position embeddings =
text position embedding; the 3D patch kernel = the 2D kernel in its middle temporal tap. What the
trick does not cover (the LSTM, the cross pooler, ``similarity_dense``) is drawn with a fixed
seed the way the original initialises it (normal(0, 0.02) linears, zero biases, unit LayerNorms,
PyTorch's LSTM default). Those heads are untrained: only meanP gives CLIP's zero-shot ranking.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Mapping

import torch
from torch import nn

from vtzoo.backbones.clip import (
    PatchEmbedding3d,
    convert_openai_clip_state_dict,
    convert_transformers_clip_state_dict,
)
from vtzoo.backbones.cross import convert_original_cross_encoder, convert_original_transformer

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.operators.clip4clip.config import CLIP4ClipConfig

StateDict = dict[str, torch.Tensor]
HEAD_INIT_SEED = 0
_HEAD_PREFIXES = ("frame_position_embeddings.", "transformerClip.", "lstm_visual.", "cross.", "similarity_dense.")


class UntrainedHeadWarning(UserWarning):
    """A similarity head was initialised for fine-tuning, not loaded from trained weights."""


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


def convert_openai_clip_checkpoint(state_dict: Mapping[str, torch.Tensor], config: "CLIP4ClipConfig") -> StateDict:
    """A plain OpenAI CLIP state dict -> a CLIP4Clip ready for zero-shot use (see module doc)."""
    # strict: every key must be CLIP's, so a fine-tuned CLIP4Clip checkpoint never loads here
    # with its head silently dropped
    clip = convert_openai_clip_state_dict(state_dict, prefix="", strict=True)
    return _with_initial_head(clip, config)


def convert_transformers_clip_checkpoint(state_dict: Mapping[str, torch.Tensor], config: "CLIP4ClipConfig") -> StateDict:
    """A transformers ``CLIPModel`` state dict -> a CLIP4Clip ready for zero-shot use."""
    clip = convert_transformers_clip_state_dict(state_dict)
    leftover = sorted(k for k in state_dict if k not in clip and not k.endswith("position_ids"))
    if leftover:
        raise ValueError(f"not a transformers CLIPModel state dict; unexpected keys: {leftover[:10]}")
    return _with_initial_head(clip, config)


def _with_initial_head(clip: StateDict, config: "CLIP4ClipConfig") -> StateDict:
    """CLIP weights (CLIPTowers keys) + the head initialised as the original does."""
    clip = dict(clip)
    if config.linear_patch == "3d" and "patch_embedding_3d.weight" not in clip:
        clip["patch_embedding_3d.weight"] = PatchEmbedding3d.inflate(clip["vision_model.embeddings.patch_embedding.weight"])
    out = {f"clip.{k}": v for k, v in clip.items()}
    header = config.sim_header
    if header == "meanP":
        return out
    out.update(initial_head_state(config))
    text_positions = clip["text_model.embeddings.position_embedding.weight"]
    text_layers = {k[len("text_model.encoder.") :]: v for k, v in clip.items() if k.startswith("text_model.encoder.layers.")}

    def copy_text_layers(dst: str) -> None:
        for key, value in text_layers.items():
            if int(key.split(".")[1]) < config.cross_num_hidden_layers:
                out[f"{dst}{key}"] = value.clone()

    if header in ("seqLSTM", "seqTransf"):
        out["frame_position_embeddings.weight"] = text_positions.clone()
    if header == "seqTransf":
        copy_text_layers("transformerClip.encoder.")
    if header == "tightTransf":
        out["cross.position_embeddings.weight"] = text_positions.clone()
        copy_text_layers("cross.transformer.encoder.")
    warnings.warn(
        f"CLIP4Clip {header}: the similarity head is initialised from CLIP as for fine-tuning, not trained; "
        "only meanP reproduces CLIP's zero-shot ranking. Load fine-tuned weights for this head.",
        UntrainedHeadWarning,
        stacklevel=3,
    )
    return out


def initial_head_state(config: "CLIP4ClipConfig", seed: int = HEAD_INIT_SEED) -> StateDict:
    """The head's parameters as the original initialises them before fine-tuning (seeded)."""
    from vtzoo.operators.clip4clip.model import build_heads

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = build_heads(config)
        heads.apply(_original_init)
    return {k: v.detach().clone() for k, v in heads.state_dict().items()}


def _original_init(module: nn.Module) -> None:
    """The original's ``init_weights``: N(0, 0.02) linears/embeddings, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
    if isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
