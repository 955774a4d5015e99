"""Read VideoCLIP's original release (fairseq/MMPT checkpoint + S3D weights) into vtzoo.

The release is two files:

* ``checkpoint_best.pt``: a fairseq checkpoint; its ``"model"`` entry is the state dict of the
  fairseq wrapper, which holds the ``MMFusionSeparate`` as ``mmmodel`` (keys
  ``mmmodel.video_encoder.bert.encoder.layer.0...``, ``mmmodel.text_encoder.embeddings...``);
* ``s3d_howto100m.pth``: the S3D state dict (see :mod:`vtzoo.backbones.s3d.convert`).

vtzoo keeps the original module names (``video_encoder.videomlp``, ``video_encoder.bert``,
``text_encoder``), so conversion strips ``mmmodel.``, drops what transformers no longer stores
(``embeddings.position_ids``) and what VideoCLIP never uses (the two BERT poolers), and puts the
S3D keys under ``s3d.`` (without its word-embedding text branch). Both files load as one
release (``weights=[checkpoint_best.pt, s3d_howto100m.pth]``, a folder holding both, or
``s3d_weights=`` next to ``weights=``); the MMPT checkpoint alone loads too, leaving the S3D
untrained (:meth:`VideoCLIPModel.init_like_original`): features work, raw video is refused.

fairseq checkpoints also pickle their training config (``argparse.Namespace`` / OmegaConf),
optimizer state, meters and numpy scalars, which ``torch.load(weights_only=True)`` refuses.
:func:`read_original_checkpoint` still loads them with ``weights_only=True``, through vtzoo's
safe loader (:mod:`vtzoo.registry.safe_pickle`): inert stand-ins, no code of theirs runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from vtzoo.backbones.s3d.convert import convert_original_state_dict as convert_s3d
from vtzoo.backbones.s3d.convert import is_original_s3d
from vtzoo.registry.weights import PartialStateDict, WeightsError, read_state_dict

WRAPPER_PREFIX = "mmmodel."
TOWERS = ("video_encoder.", "text_encoder.")
S3D_PREFIX = "s3d."


def _is_unused(key: str) -> bool:
    return key.endswith("embeddings.position_ids") or ".pooler." in key


def split_original_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """Separate a (possibly merged) original state dict into VideoCLIP towers and S3D parts."""
    towers: dict[str, torch.Tensor] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.").removeprefix(WRAPPER_PREFIX)
        (towers if key.startswith(TOWERS) else rest)[key] = value
    return towers, rest


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any = None) -> dict[str, torch.Tensor]:
    """Original keys (``MMFusionSeparate`` with or without ``mmmodel.``, and/or S3D) -> vtzoo keys."""
    towers, rest = split_original_state_dict(state_dict)
    # S3D keys already under ``s3d.`` (a vtzoo file) pass through
    converted_s3d = {k: v for k, v in rest.items() if k.startswith(S3D_PREFIX)}
    rest = {k: v for k, v in rest.items() if not k.startswith(S3D_PREFIX)}
    if not towers and not converted_s3d and not is_original_s3d(rest):
        sample = ", ".join(sorted(state_dict)[:5])
        raise WeightsError(
            "not a VideoCLIP checkpoint: expected MMPT keys (mmmodel.)video_encoder.* / text_encoder.* "
            f"and/or the S3D keys of s3d_howto100m.pth; first keys found: {sample}"
        )
    converted = {k: v for k, v in towers.items() if not _is_unused(k)}
    converted.update(converted_s3d)
    if rest:
        converted.update({S3D_PREFIX + k: v for k, v in convert_s3d(rest).items()})
    return converted


def has_s3d_weights(converted: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(S3D_PREFIX) for k in converted)


def has_tower_weights(converted: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(TOWERS) for k in converted)


def read_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of an original checkpoint (fairseq ``.pt``, plain ``.pth`` or ``.safetensors``).

    vtzoo's safe loader reads it with ``torch.load(weights_only=True)``, standing in inert
    placeholders for the config and meter objects a fairseq checkpoint pickles (OmegaConf,
    fairseq, numpy, ...); a class from any other module is refused, named. The state dict is the
    checkpoint's ``model`` entry.
    """
    return read_state_dict(path)


def convert_release(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """The original release (MMPT checkpoint, with or without the S3D file) -> a VideoCLIP state dict.

    Without S3D weights the result is a :class:`PartialStateDict` (the S3D stays untrained); a
    model built without S3D (``with_s3d=False``) ignores them.
    """
    converted = convert_original_state_dict(state_dict, config)
    if not has_tower_weights(converted):
        raise WeightsError("only S3D weights found; VideoCLIP also needs its MMPT checkpoint (checkpoint_best.pt)")
    if not getattr(config, "with_s3d", True):
        return {k: v for k, v in converted.items() if not k.startswith(S3D_PREFIX)}
    if not has_s3d_weights(converted):
        return PartialStateDict(converted, initialised=(S3D_PREFIX,))
    return converted


CONVERTERS = {"original": convert_release}

