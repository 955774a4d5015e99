"""Golden parity runner for irCSN-152 (VMZ): every stage, the pooled feature and the logits.

The case regenerates its weights from config.json's ``weights_recipe`` (``vtzoo.registry.recipes``),
with any tensors of ``original_state_dict.safetensors`` beside them.
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.operators.mdmmt.experts.ircsn152.convert import CONVERTERS
from vtzoo.operators.mdmmt.experts.ircsn152.model import (
    MEAN,
    STD,
    IrCsnConfig,
    IrCsnModel,
)
from vtzoo.registry.golden import GoldenCase, GoldenError, GoldenRun
from vtzoo.registry.weights import load_state_dict_strict


def run_ircsn_case(case: GoldenCase) -> GoldenRun:
    cfg = case.config
    original = {"blocks": cfg.get("full_config", {}).get("blocks", [3, 8, 36, 3]),
                "num_classes": cfg.get("constructor", {}).get("num_classes", 400)}  # fmt: skip
    config = IrCsnConfig.from_original(original)
    model = IrCsnModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
    inputs = case.inputs()
    video = inputs.get("video")
    if video is None:
        raise GoldenError(f"{case.path}: input 'video' is missing")
    out: dict[str, Any] = {}
    if "frames_uint8" in inputs:  # normalisation check: uint8 (B, T, H, W, 3) -> (B, 3, T, H, W)
        out["_video_from_frames"] = normalize_clip(inputs["frames_uint8"])
    with torch.no_grad():
        stages = model.stages(video)
        for name, value in stages.items():
            out[f"{name}_out"] = value
        out["features"] = torch.flatten(model.avgpool(stages["layer4"]), 1)
        out["logits"] = model.fc(out["features"])
    if "_video_from_frames" in out and not torch.equal(out.pop("_video_from_frames"), video):
        raise GoldenError(f"{case.path}: vtzoo's clip normalisation differs from the case's 'video' input")
    return GoldenRun(out, {})


def normalize_clip(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) RGB -> float32 (B, 3, T, H, W), /255 then Kinetics mean/std."""
    x = frames_uint8.float() / 255.0
    x = x.permute(0, 4, 1, 2, 3)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


GOLDEN_RUNNERS = {"ircsn152": run_ircsn_case}
