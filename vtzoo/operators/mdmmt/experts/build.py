"""Build the expert extractors from a kind, a weights spec and configuration overrides.

Kinds: ``clip-frames`` (shared CLIP towers), ``vggish``, ``ircsn152``. ``config`` mixes the
network's config fields (e.g. irCSN ``layers``, CLIP ``sizes``) and the extractor's sampling
fields (``fps``, ``size``, ``frames_per_clip``, ...); each goes where it belongs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from vtzoo.registry.weights import WeightsError, build_model, resolve_weights

EXPERT_KINDS = ("clip-frames", "vggish", "ircsn152")


def _split(config: Mapping[str, Any], extractor_class: type) -> tuple[dict[str, Any], dict[str, Any]]:
    fields = {f.name for f in dataclasses.fields(extractor_class)} - {"model", "towers", "name", "device"}
    extractor = {k: v for k, v in config.items() if k in fields}
    return extractor, {k: v for k, v in config.items() if k not in fields}


def load_clip_towers(weights: Any, sizes: Mapping[str, Any] | None = None):
    """CLIP towers from ``"random"``, a transformers CLIP folder / ``hf://`` repo, or a state dict file
    (OpenAI keys or transformers keys)."""
    from vtzoo.backbones.clip import (
        CLIPSizes,
        CLIPTowers,
        convert_openai_clip_state_dict,
        convert_transformers_clip_state_dict,
        is_openai_clip_state_dict,
        sizes_from_transformers_state_dict,
    )
    from vtzoo.registry.weights import load_state_dict_strict

    if weights == "random":
        return CLIPTowers(CLIPSizes(**dict(sizes or {}))).eval()
    state = resolve_weights(weights, None).state_dict()
    if is_openai_clip_state_dict(state):
        converted = convert_openai_clip_state_dict(state)
        towers = CLIPTowers(CLIPSizes.from_openai_state_dict(state))
    else:
        converted = convert_transformers_clip_state_dict(state)
        towers = CLIPTowers(sizes_from_transformers_state_dict(converted))
    load_state_dict_strict(towers, converted, str(weights))
    return towers.eval()


def build_expert(kind: str, name: str, weights: Any, config: Mapping[str, Any] | None = None, device: Any = "cpu"):
    """One extractor; ``weights`` is a spec (``"random"``, a file, a folder, ``hf://``)."""
    from vtzoo.operators.mdmmt.experts.extractors import ClipFrameExpert, IrCsnExpert, VggishExpert
    from vtzoo.operators.mdmmt.experts.ircsn import IrCsnModel
    from vtzoo.operators.mdmmt.experts.vggish import VggishModel

    config = dict(config or {})
    if weights is None:
        raise WeightsError(
            f"expert {name!r} ({kind}) has no weights on the Hub: pass expert_weights={{{name!r}: <checkpoint file>}} "
            "(see the expert's weight card for the original release), or 'random' for an untrained expert"
        )
    if kind == "clip-frames":
        params, rest = _split(config, ClipFrameExpert)
        towers = load_clip_towers(weights, rest.get("sizes")).to(device)
        return ClipFrameExpert(towers=towers, name=name, device=device, **params)
    if kind == "vggish":
        params, rest = _split(config, VggishExpert)
        model, _ = build_model(VggishModel, None, weights, overrides=rest)
        return VggishExpert(model=model.eval().to(device), name=name, device=device, **params)
    if kind == "ircsn152":
        params, rest = _split(config, IrCsnExpert)
        rest.setdefault("num_classes", 0)  # MDMMT replaces the fc head by an identity
        model, _ = build_model(IrCsnModel, None, weights, overrides=rest)
        return IrCsnExpert(model=model.eval().to(device), name=name, device=device, **params)
    raise ValueError(f"unknown expert kind {kind!r} (known: {', '.join(EXPERT_KINDS)})")

