"""Checkpoint converters for MoViNet.

* ``original``: state dicts of the reference PyTorch port (Atze00/MoViNet-pytorch), e.g. its
  released ``modelA2_statedict_v3`` / ``modelA0_stream_statedict_v3``. vtzoo keeps the port's
  module names, so this is a key check plus a float32 cast.
* ``tf``: variables of the official TF MoViNets (TF-Hub SavedModels or Model Garden
  checkpoints), name -> array, e.g. collected with
  ``{v.name: v.numpy() for v in hub.KerasLayer(url).variables}``. This is the only route to
  A3-A5 *stream* weights, which only TF publishes. The name mapping is documented in
  ``docs/operators/movinet.md`` ("TF variable names").

:func:`read_checkpoint` reads the two file kinds the generic reader does not: the port's
extension-less ``torch.save`` files and TF variables exported to ``.npz``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from vtzoo.registry.safe_pickle import load_checkpoint_tensors
from vtzoo.registry.weights import StateDict, WeightsError, read_state_dict, unwrap_state_dict

_BLOCK = re.compile(r"(?:^|/)b(\d+)/l(\d+)/(?:bneck/)?(.*)$")
_BN_STATS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """Reference-port state dict -> vtzoo state dict (same key names; floats cast to float32).

    The port has no positional-encoding scales (it does not implement the A3-A5 stream
    encoding); converting its weights into a model that uses one is refused.
    """
    if getattr(config, "use_positional_encoding", False):
        raise WeightsError(
            "the reference PyTorch port has no positional encoding: A3-A5 stream weights come from the "
            "official TF release (converter 'tf')"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        out[key] = value.float() if value.is_floating_point() else value
    return out


def _tf_layout(name: str, value: torch.Tensor) -> torch.Tensor:
    """TF kernels are channels-last: (d,h,w,in,out), (h,w,in,out) or depthwise (h,w,C,1)."""
    if value.dim() == 5:
        return value.permute(4, 3, 0, 1, 2).contiguous()
    if value.dim() == 4:
        if "depthwise" in name:
            return value.permute(2, 3, 0, 1).contiguous()
        return value.permute(3, 2, 0, 1).contiguous()
    return value


def _conv_unit_key(rest: str, conv_type: str) -> str | None:
    """The part after a conv block's scope -> ``conv_{1,2}.{conv3d|conv2d|norm}.<param>``."""
    leaf = rest.rsplit("/", 1)[-1]
    if "bn_temporal/" in rest or "bn/" in rest:
        unit = "conv_2" if "bn_temporal/" in rest else "conv_1"
        stat = _BN_STATS.get(leaf)
        return f"{unit}.norm.{stat}" if stat else None
    param = {"kernel": "weight", "depthwise_kernel": "weight", "bias": "bias"}.get(leaf)
    if param is None:
        return None
    unit = "conv_2" if "conv2d_temporal" in rest or "conv3d_temporal" in rest else "conv_1"
    conv = "conv3d" if conv_type == "3d" else "conv2d"
    return f"{unit}.{conv}.{param}"


def _tf_key(name: str, config: Any, shortcut_index: Mapping[str, int]) -> str | None:
    name = re.sub(r":\d+$", "", name)
    conv_type = config.conv_type
    match = _BLOCK.search(name)
    if match:
        i, j, rest = match.groups()
        block = f"blocks.b{i}_l{j}"
        if rest.startswith("se/") and "scale" in rest.rsplit("/", 1)[-1]:
            return f"{block}.se.pos_encoding_scale"
        if rest.rsplit("/", 1)[-1] == "scale":
            return f"{block}.alpha"
        for scope, target in (
            ("expansion/", "expand"),
            ("feature/", "deep"),
            ("projection/", "project"),
            ("se/se_reduce/", "se.fc1"),
            ("se/se_expand/", "se.fc2"),
            ("skip/skip_project/", f"res.{shortcut_index.get(block, 0)}"),
        ):
            if rest.startswith(scope):
                unit = _conv_unit_key(rest[len(scope) :], conv_type)
                return f"{block}.{target}.{unit}" if unit else None
        return None
    for scope, target in (
        ("classifier_head/head/", "classifier.0"),
        ("classifier_head/classifier/", "classifier.3"),
        ("head/project/", "conv7"),
        ("stem/stem/", "conv1"),
    ):
        at = name.find(scope)
        if at >= 0 and not (scope == "head/project/" and name[:at].endswith("classifier_")):
            unit = _conv_unit_key(name[at + len(scope) :], conv_type)
            return f"{target}.{unit}" if unit else None
    return None


def convert_tf_variables(variables: Mapping[str, Any], config: Any) -> dict[str, torch.Tensor]:
    """Official TF MoViNet variables (name -> array) -> vtzoo state dict.

    Names look like ``b1/l0/bneck/feature/conv2d_temporal/depthwise_conv2d_1/depthwise_kernel:0``;
    scope prefixes before ``stem/``, ``b<i>/l<j>/``, ``head/`` and ``classifier_head/`` and Keras'
    numbered sub-scopes (``conv2d_3``) are ignored. Unknown names raise, listing them.
    """
    from vtzoo.operators.movinet.architectures import ARCHITECTURES

    arch = ARCHITECTURES[config.model_id]
    shortcut_index: dict[str, int] = {}
    for i, stage in enumerate(arch["stages"]):
        for j, (_, _, _, stride, _, _) in enumerate(stage):
            # a strided shortcut starts with the parameter-free average pool at index 0
            shortcut_index[f"blocks.b{i}_l{j}"] = 1 if tuple(stride) != (1, 1, 1) else 0
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for name, value in variables.items():
        tensor = torch.as_tensor(np.asarray(value)).float()
        key = _tf_key(name, config, shortcut_index)
        if key is None:
            unknown.append(name)
            continue
        out[key] = _tf_layout(name, tensor).reshape(()) if key.endswith(("alpha", "pos_encoding_scale")) else _tf_layout(name, tensor)
    if unknown:
        raise WeightsError("TF MoViNet variables with no vtzoo counterpart:\n  " + "\n  ".join(sorted(unknown)))
    # TF keeps no batch counter; PyTorch's BatchNorm wants one.
    for key in [k for k in out if k.endswith(".norm.running_var")]:
        out[key.replace("running_var", "num_batches_tracked")] = torch.tensor(0, dtype=torch.long)
    return out


def read_checkpoint(path: Path) -> StateDict:
    """One checkpoint file as tensors: ``.npz`` TF variables (name -> array, read without
    pickle), the port's files without an extension (``modelA0_statedict_v3``: a ``torch.save``
    state dict, read with ``weights_only=True``), anything else as the generic reader reads it."""
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {name: torch.from_numpy(npz[name]) for name in npz.files}
        except (OSError, ValueError) as exc:
            raise WeightsError(f"checkpoint {path} is not a readable .npz of TF variables: {exc}") from None
    if not path.suffix:
        return unwrap_state_dict(load_checkpoint_tensors(path), path)
    return read_state_dict(path)


# checkpoint formats the one loading path (vtzoo.registry.weights.build_model) converts
CONVERTERS = {"original": convert_original_state_dict, "tf": convert_tf_variables}
