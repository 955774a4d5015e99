"""Original Frozen in Time checkpoints -> vtzoo state dicts.

vtzoo keeps the original's module names, so the conversion is about what the original did on
load: drop a DataParallel ``module.`` prefix, ignore DistilBERT's ``position_ids`` buffer
(saved by older transformers), and fit ``video_model.temporal_embed`` to the model's frame
count (truncate a longer table; fill a shorter one per the config's ``load_temporal_fix``).
The trainer's ``.pth.tar`` is read by the generic reader (tensors only: its pickled
``ConfigParser`` becomes an inert stand-in, see :mod:`vtzoo.registry.safe_pickle`), so loading
goes through :func:`vtzoo.registry.weights.build_model` like any other family's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch
import torch.nn.functional as F

from vtzoo.registry.weights import WeightsError

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.operators.frozen_in_time.config import FrozenInTimeConfig

TEMPORAL_KEY = "video_model.temporal_embed"
POS_KEY = "video_model.pos_embed"
_REQUIRED = (
    TEMPORAL_KEY,
    POS_KEY,
    "video_model.patch_embed.proj.weight",
    "text_model.embeddings.word_embeddings.weight",
)
_IGNORED = ("text_model.embeddings.position_ids",)


def strip_data_parallel(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix DataParallel training leaves on every key."""
    keys = list(state_dict)
    if keys and keys[0].startswith("module."):
        return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    return dict(state_dict)


def fit_temporal_embed(table: torch.Tensor, num_frames: int, fix: str) -> torch.Tensor:
    """Resize a (1, T_loaded, D) temporal embedding to (1, num_frames, D) as the original does.

    More frames than the model: keep the first ``num_frames``. Fewer: ``zeros`` copies them and
    pads with zeros; ``interp`` / ``bilinear`` call ``F.interpolate`` on the table viewed as a
    (1, 1, T, D) image with mode ``nearest`` / ``bilinear`` (align_corners=False).
    """
    loaded = table.shape[1]
    if loaded == num_frames:
        return table
    if loaded > num_frames:
        return table[:, :num_frames]
    if fix == "zeros":
        out = table.new_zeros(table.shape[0], num_frames, table.shape[2])
        out[:, :loaded] = table
        return out
    if fix in ("interp", "bilinear"):
        mode = "nearest" if fix == "interp" else "bilinear"
        # interpolate in float32: bilinear has no fp16 CPU kernel in some torch builds
        image = table.float().unsqueeze(0)
        return F.interpolate(image, size=(num_frames, table.shape[2]), mode=mode).squeeze(0).to(table.dtype)
    raise WeightsError(f"unknown load_temporal_fix {fix!r} (expected zeros, interp or bilinear)")


def convert_original_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: "FrozenInTimeConfig"
) -> dict[str, torch.Tensor]:
    """Map an original ``FrozenInTime`` state dict (``checkpoint['state_dict']``) to vtzoo keys."""
    sd = strip_data_parallel(state_dict)
    missing = [k for k in _REQUIRED if k not in sd]
    if missing:
        sample = ", ".join(sorted(sd)[:5]) or "(empty)"
        raise WeightsError(
            "this is not a Frozen in Time checkpoint: expected the original FrozenInTime keys "
            f"(video_model.* space-time transformer and text_model.* DistilBERT), missing {missing}; "
            f"first keys found: {sample}"
        )
    sd = {k: v for k, v in sd.items() if k not in _IGNORED}
    patches = sd[POS_KEY].shape[1] - 1
    if patches != config.patches_per_frame:
        raise WeightsError(
            f"checkpoint has {patches} spatial patches per frame but the model has {config.patches_per_frame} "
            f"(img_size {config.img_size}, patch_size {config.patch_size}); the original cannot load a different "
            "spatial resolution either"
        )
    sd[TEMPORAL_KEY] = fit_temporal_embed(sd[TEMPORAL_KEY], config.num_frames, config.load_temporal_fix)
    return sd


# checkpoint formats the one loading path (vtzoo.registry.weights.build_model) converts; the
# temporal fix needs the model's config, which build_model hands to every converter
CONVERTERS = {"original": convert_original_state_dict}
