"""Original MDMMT / MMT checkpoints -> vtzoo state dicts.

Release formats:

* MDMMT ``mdmmt_3mod.pth``: ``{"vid_state_dict": {...}, "txt_state_dict": {...}}``, two plain
  state dicts with disjoint prefixes (``vid_bert.``/``video_dim_reduce.`` and
  ``txt_bert.``/``text_gu.``/``moe_fc_txt.``). :func:`merge_release_dicts` flattens it.
* MMT ``<config>.pth``: ``{"state_dict": CENet.state_dict(), ...}``; the text gates are named
  ``text_GU`` there.

Both carry pooler weights the forward never uses and (transformers < 4.31 era) a
``txt_bert.embeddings.position_ids`` buffer with no learned values: both are dropped.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.registry.weights import WeightsError

RELEASE_PARTS = ("vid_state_dict", "txt_state_dict")
_DROPPED_PREFIXES = ("vid_bert.pooler.", "txt_bert.pooler.")
_DROPPED_KEYS = ("txt_bert.embeddings.position_ids",)


def merge_release_dicts(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Flatten MDMMT's ``{vid_state_dict, txt_state_dict}`` (or MMT's ``{state_dict}``) to one dict."""
    if any(part in checkpoint for part in RELEASE_PARTS):
        merged: dict[str, torch.Tensor] = {}
        for part in RELEASE_PARTS:
            inner = checkpoint.get(part)
            if not isinstance(inner, Mapping):
                raise WeightsError(f"MDMMT checkpoint: entry {part!r} is missing or not a state dict")
            overlap = set(merged) & set(inner)
            if overlap:
                raise WeightsError(f"MDMMT checkpoint: {part} repeats keys {sorted(overlap)[:5]}")
            merged.update(inner)
        return merged
    inner = checkpoint.get("state_dict")
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(checkpoint)


def read_release_checkpoint(path) -> dict[str, torch.Tensor]:
    """An original release file as one flat dict: MDMMT's ``{vid_state_dict, txt_state_dict}`` or
    MMT's training checkpoint (whose pickled config object gets an inert stand-in: vtzoo reads
    pickles with ``torch.load(weights_only=True)`` only)."""
    from pathlib import Path

    from vtzoo.registry.safe_pickle import load_checkpoint_tensors

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return merge_release_dicts(load_file(str(path)))
    checkpoint = load_checkpoint_tensors(path)
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a state dict")
    return merge_release_dicts(checkpoint)


def _rename(key: str) -> str:
    if key.startswith("text_GU."):  # MMT's name; MDMMT renamed the gates to text_gu
        key = "text_gu." + key[len("text_GU.") :]
    if key.startswith("vid_bert."):
        key = key.replace(".layer_norm.", ".LayerNorm.")  # video transformer uses lower case
    return key


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """Map original MDMMT or MMT keys (either release) to vtzoo's module names."""
    state_dict = merge_release_dicts(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(_DROPPED_PREFIXES) or key in _DROPPED_KEYS:
            continue
        if key.startswith("module."):
            key = key[len("module.") :]
        out[_rename(key)] = value
    _pad_positions(out, config)
    return out


def convert_mmt_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """MMT's ``CENet.state_dict()`` (same mapping; kept as a named format for cards)."""
    return convert_original_state_dict(state_dict, config)


def _pad_positions(state_dict: dict[str, torch.Tensor], config: Any) -> None:
    """MMT's loader zero-pads the video position table when the model has more positions."""
    key = "vid_bert.embeddings.position_embeddings.weight"
    table = state_dict.get(key)
    wanted = getattr(config, "max_position_embeddings", None)
    if table is not None and wanted is not None and table.shape[0] < wanted:
        pad = table.new_zeros(wanted - table.shape[0], table.shape[1])
        state_dict[key] = torch.cat([table, pad])


# what the loading path (vtzoo.registry.weights.build_model) finds here: MDMMT releases nest two
# state dicts; MMT's training checkpoints pickle a config beside theirs
read_checkpoint = read_release_checkpoint
CONVERTERS = {"original": convert_original_state_dict, "mmt-original": convert_mmt_state_dict}
