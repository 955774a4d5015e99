"""Read the original S3D release (``s3d_howto100m.pth``) into vtzoo's :class:`S3D`.

The release is a plain state dict of the original ``S3D`` module (no wrapper, no prefix),
including the MIL-NCE word-embedding text branch (``text_module.*``). vtzoo keeps the original
module names, so conversion only drops that text branch (unused by VideoCLIP and COOT) and a
``module.`` prefix left by DataParallel. Precision is cast to the model's on load.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.registry.weights import WeightsError

TEXT_BRANCH_PREFIX = "text_module."
# Keys every S3D state dict has; used to recognise the format before loading.
SIGNATURE_KEYS = ("conv1.conv1.weight", "mixed_5c.conv_b0.conv1.weight", "fc.weight")


def is_original_s3d(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when ``state_dict`` has the original S3D key layout (with or without ``module.``)."""
    keys = {k.removeprefix("module.") for k in state_dict}
    return all(k in keys for k in SIGNATURE_KEYS)


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any = None) -> dict[str, torch.Tensor]:
    """Original ``S3D.state_dict()`` keys -> vtzoo :class:`S3D` keys (the video branch)."""
    if not is_original_s3d(state_dict):
        sample = ", ".join(sorted(state_dict)[:5])
        raise WeightsError(
            f"not an original S3D (s3d_howto100m.pth) state dict: expected keys {list(SIGNATURE_KEYS)}, "
            f"first keys found: {sample}"
        )
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith(TEXT_BRANCH_PREFIX):
            continue
        converted[key] = value
    return converted


# checkpoint formats the one loading path (vtzoo.registry.weights.build_model) converts
CONVERTERS = {"original": convert_original_state_dict}
