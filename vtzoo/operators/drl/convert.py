"""Original DRL checkpoints (``pytorch_model.bin.<epoch>`` of ``main.py``) -> vtzoo keys.

The original saves ``model.state_dict()`` of its ``DRL`` module: CLIP under ``clip.`` with OpenAI
key names (fp16 Linear/Conv/attention tensors when trained on GPU), and the heads at top level.
Only the CLIP internals and the attention blocks change names here; everything else keeps its
original key.

``CONVERTERS`` (found by :class:`~vtzoo.modeling.PretrainedModel`): ``original`` for those
checkpoints; ``openai-clip`` / ``transformers-clip`` for a plain CLIP to start from (no DRL weights
were released), whose heads :meth:`DRLModel.init_like_original` initialises.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from vtzoo.backbones.clip import (
    convert_openai_clip_state_dict,
    convert_transformers_clip_state_dict,
    is_openai_clip_state_dict,
)
from vtzoo.backbones.cross import convert_original_cross_encoder, convert_original_transformer
from vtzoo.modeling import PartialStateDict
from vtzoo.operators.drl.model import HEAD_MODULES
from vtzoo.registry.errors import WeightsError

# head key -> the configuration it belongs to (used to explain a checkpoint/config mismatch)
_HEAD_PATTERNS: dict[str, tuple[str, str]] = {
    r"^transformerClip\.": ("agg_module", "seqTransf"),
    r"^lstm_visual\.": ("agg_module", "seqLSTM"),
    r"^text_weight_fc\.": ("interaction", "wti"),
    r"^cross\.": ("interaction", "xti"),
}
_PASS_THROUGH = ("frame_position_embeddings.", "lstm_visual.", "text_weight_fc.", "video_weight_fc.", "similarity_dense.")


def describe_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """What configuration an original DRL state dict was trained with, read from its keys.

    Returns a dict with ``interaction`` (``wti``/``xti``, or ``ti-or-dp`` when there is no
    interaction head: those two add no parameters), ``agg_module`` and, for wti, ``wti_arch``.
    """
    found: dict[str, Any] = {"interaction": "ti-or-dp", "agg_module": "None"}
    for pattern, (field, value) in _HEAD_PATTERNS.items():
        if any(re.match(pattern, k) for k in state_dict):
            found[field] = value
    if found["interaction"] == "wti":
        if "text_weight_fc.weight" in state_dict:
            found["wti_arch"] = 1
        else:
            found["wti_arch"] = 3 if "text_weight_fc.4.weight" in state_dict else 2
    if found["interaction"] == "xti":
        found["cross_layers"] = len({k.split(".")[3] for k in state_dict if k.startswith("cross.transformer.resblocks.")})
    return found


def _check_family(state_dict: Mapping[str, torch.Tensor]) -> None:
    if not any(k.startswith("clip.visual.") for k in state_dict) or "clip.token_embedding.weight" not in state_dict:
        sample = ", ".join(sorted(state_dict)[:4])
        raise WeightsError(
            "not an original DRL checkpoint: expected CLIP under 'clip.' with OpenAI key names "
            f"('clip.visual.*', 'clip.token_embedding.weight', ...) plus DRL's heads; first keys: {sample}"
        )
    if any(k.startswith("clip.vision_model.") for k in state_dict):
        raise WeightsError("this checkpoint is already in vtzoo/transformers layout, not the original DRL layout")


def _check_config(state_dict: Mapping[str, torch.Tensor], config: Any) -> None:
    """Fail early, naming both sides, when the checkpoint's heads do not match the config."""
    seen = describe_checkpoint(state_dict)
    wanted_interaction = config.interaction if config.interaction in ("wti", "xti") else "ti-or-dp"
    problems = []
    if seen["interaction"] != wanted_interaction:
        problems.append(f"interaction: checkpoint {seen['interaction']!r}, config {config.interaction!r}")
    if seen["agg_module"] != config.agg_module:
        problems.append(f"agg_module: checkpoint {seen['agg_module']!r}, config {config.agg_module!r}")
    if config.interaction == "wti" and seen.get("wti_arch", config.wti_arch) != config.wti_arch:
        problems.append(f"wti_arch: checkpoint {seen['wti_arch']}, config {config.wti_arch}")
    if config.interaction == "xti" and seen.get("cross_layers", config.cross_layers) != config.cross_layers:
        problems.append(f"cross_layers: checkpoint {seen['cross_layers']}, config {config.cross_layers}")
    if problems:
        raise WeightsError(
            "the DRL checkpoint was trained with another configuration (" + "; ".join(problems) + "). "
            "Pass the checkpoint's settings as config overrides, e.g. vtzoo.create('drl', ..., "
            + ", ".join(f"{k}={v!r}" for k, v in seen.items() if v != "ti-or-dp")
            + ")"
        )


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """Original ``DRL.state_dict()`` -> :class:`~vtzoo.operators.drl.model.DRLModel` keys (float32).

    Raises :class:`WeightsError` for a checkpoint of another family, or one whose heads belong
    to another DRL configuration than ``config``; leftover keys are reported, never dropped.
    """
    _check_family(state_dict)
    _check_config(state_dict, config)
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}
    out = {f"clip.{k}": v for k, v in convert_openai_clip_state_dict(sd, prefix="clip.").items()}
    used = {k for k in sd if k.startswith("clip.")}
    if any(k.startswith("transformerClip.") for k in sd):
        out.update(convert_original_transformer(sd, "transformerClip.", "transformerClip."))
        used |= {k for k in sd if k.startswith("transformerClip.")}
    if any(k.startswith("cross.") for k in sd):
        out.update(convert_original_cross_encoder(sd, "cross.", "cross."))
        used |= {k for k in sd if k.startswith("cross.")}
    for key, value in sd.items():
        if key.startswith(_PASS_THROUGH):
            out[key] = value
            used.add(key)
    leftover = sorted(set(sd) - used)
    if leftover:
        raise WeightsError(f"original DRL checkpoint has keys vtzoo does not know: {leftover[:10]}")
    return out


# -- starting from CLIP (no DRL weights were released) -------------------------------------------
def convert_clip_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> PartialStateDict:
    """An OpenAI or transformers CLIP state dict -> DRL's CLIP; the heads are left to
    :meth:`DRLModel.init_like_original` (the original's start of fine-tuning)."""
    if any(k.startswith("clip.") for k in state_dict):
        raise WeightsError("this looks like a DRL (or CLIP4Clip) checkpoint with a 'clip.' prefix, not a bare CLIP")
    if is_openai_clip_state_dict(state_dict):
        clip_sd = convert_openai_clip_state_dict(state_dict)
    elif "text_projection.weight" in state_dict and any(k.startswith("vision_model.") for k in state_dict):
        clip_sd = convert_transformers_clip_state_dict(state_dict)
    else:
        raise WeightsError("not a CLIP state dict (expected OpenAI keys 'visual.proj', ... or transformers CLIPModel keys)")
    return PartialStateDict({f"clip.{k}": v for k, v in clip_sd.items()}, initialised=tuple(f"{m}." for m in HEAD_MODULES))


CONVERTERS = {
    "original": convert_original_state_dict,
    "openai-clip": convert_clip_state_dict,
    "transformers-clip": convert_clip_state_dict,
}
