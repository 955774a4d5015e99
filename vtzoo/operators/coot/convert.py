"""The original COOT checkpoints -> vtzoo state dicts.

Two release layouts exist (both loaded by the original's ``set_model_state``):

1. **2020 coot-videotext** (the released ``provided_models/*.pth``): a Python *list* of four
   plain state dicts in the order video local ("video pooler"), video global ("video
   sequencer"), text local ("text pooler"), text global ("text sequencer"), with older key names
   (``input_norm.``, ``input_fc.<i>``, ``pooler.genpool_*``).
2. **the later trainer** (``models/model_<epoch>.pth``): a *dict* ``{"net_video_local": sd, ...}``.

:func:`flatten_original_checkpoint` turns either into one flat dict ``<network>.<key>`` (layout
2's names; what the golden fixtures store), and :func:`convert_original_state_dict` checks it
and strips DataParallel's ``module.``. vtzoo's module names ARE the original's, so no key needs
renaming beyond the 2020 ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from vtzoo.operators.coot.config import NETWORK_NAMES
from vtzoo.registry.weights import WeightsError

# the 2020 release's key names -> the later ones, by substring (as the original's loader does)
LEGACY_RENAMES = (
    ("input_norm.", "norm_input."),
    ("input_fc.", "input_fc.mlp."),
    ("pooler.genpool", "pooler.pools.0.genpool"),
)
_MART_KEYS = ["epoch", "model", "model_cfg", "opt"]


def _strip_module(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _legacy_key(key: str) -> str:
    for old, new in LEGACY_RENAMES:
        key = key.replace(old, new)
    return key


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, torch.Tensor) for v in value.values())


def flatten_original_checkpoint(obj: Any, origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Either release layout (list of 4 / dict of 4 state dicts, or already flat) -> ``<network>.<key>``."""
    if isinstance(obj, (list, tuple)):
        if len(obj) != len(NETWORK_NAMES) or not all(_is_tensor_dict(sd) for sd in obj):
            raise WeightsError(
                f"{origin}: a COOT 2020 checkpoint is a list of 4 state dicts (video local, video global, "
                f"text local, text global); got a {type(obj).__name__} of {len(obj)} "
                f"({', '.join(type(sd).__name__ for sd in obj[:6])})"
            )
        return {
            f"{name}.{_legacy_key(_strip_module(key))}": value
            for name, sd in zip(NETWORK_NAMES, obj)
            for key, value in sd.items()
        }
    if isinstance(obj, Mapping):
        if sorted(obj) == _MART_KEYS:
            raise WeightsError(f"{origin}: this is a MART captioning checkpoint (epoch/model/model_cfg/opt), not "
                               "a COOT retrieval model")  # fmt: skip
        if set(obj) == set(NETWORK_NAMES) and all(_is_tensor_dict(sd) for sd in obj.values()):
            return {f"{name}.{_strip_module(k)}": v for name in NETWORK_NAMES for k, v in obj[name].items()}
        if _is_tensor_dict(obj):
            return dict(obj)
        nested = [k for k, v in obj.items() if isinstance(v, Mapping)]
        raise WeightsError(
            f"{origin}: not a COOT checkpoint: expected a list of 4 state dicts (2020 release) or a dict with "
            f"the keys {list(NETWORK_NAMES)}; got a dict with keys {sorted(map(str, obj))[:8]}"
            + (f" (nested: {nested[:4]})" if nested else "")
        )
    raise WeightsError(f"{origin}: not a COOT checkpoint (got a {type(obj).__name__})")


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any = None) -> dict[str, torch.Tensor]:
    """Flat original state dict (``<network>.<key>``, optionally ``<network>.module.<key>``) -> vtzoo keys.

    Keys that belong to none of the four networks are refused with the list of them.
    """
    converted: dict[str, torch.Tensor] = {}
    stray = []
    for key, value in state_dict.items():
        network, _, rest = key.partition(".")
        if network not in NETWORK_NAMES or not rest:
            stray.append(key)
            continue
        converted[f"{network}.{_strip_module(rest)}"] = value
    if stray:
        shown = ", ".join(sorted(stray)[:10])
        raise WeightsError(
            f"not a COOT state dict: {len(stray)} key(s) outside the four networks {list(NETWORK_NAMES)}: {shown}"
        )
    return converted


def load_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a released ``.pth`` (either layout) or a flat ``.safetensors`` -> flat original keys.

    Pickled files go through vtzoo's safe loader (``torch.load(weights_only=True)``); nothing is
    ever unpickled beyond tensors and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return flatten_original_checkpoint(load_file(str(path)), str(path))
    from vtzoo.registry.safe_pickle import load_checkpoint_tensors

    return flatten_original_checkpoint(load_checkpoint_tensors(path), str(path))


def to_legacy_list(state_dict: Mapping[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """vtzoo / layout-2 flat dict -> the 2020 list layout (old key names); for tests and export."""
    inverse = [(new, old) for old, new in LEGACY_RENAMES]
    out: list[dict[str, torch.Tensor]] = []
    for name in NETWORK_NAMES:
        sd = {}
        for key, value in state_dict.items():
            if key.startswith(name + "."):
                sub = key[len(name) + 1 :]
                for new, old in inverse:
                    sub = sub.replace(new, old)
                sd[sub] = value
        out.append(sd)
    return out


# what the loading path (vtzoo.registry.weights.build_model) finds here
read_checkpoint = load_original_checkpoint
CONVERTERS = {"original": convert_original_state_dict}
