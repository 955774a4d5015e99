"""VMZ's irCSN release (``irCSN_152_ig65m_from_scratch_f125286141.pth``) -> vtzoo keys."""

from __future__ import annotations

from typing import Any, Mapping

import torch


def convert_vmz_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """VMZ ``irCSN_152_*.pth`` -> vtzoo: same names; fc dropped when the model has no head.

    ``num_batches_tracked`` entries may be absent from a release file; they are filled with 0.
    """
    out = {k: v for k, v in state_dict.items() if config.num_classes or not k.startswith("fc.")}
    for key in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    return out


CONVERTERS = {"original": convert_vmz_state_dict}
