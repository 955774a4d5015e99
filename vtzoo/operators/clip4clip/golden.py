"""Golden parity runner for CLIP4Clip cases (``vtzoo verify-golden``).

The model is built from the case's ``config.json`` alone: its ``tiny`` block is what the original
was built from (the CLIP sizes ``clip``, the effective cross config ``cross_config_effective``,
the task arguments ``task_config``), mapped by :meth:`CLIP4ClipConfig.from_original`.
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.operators.clip4clip.config import CLIP4ClipConfig
from vtzoo.operators.clip4clip.convert import CONVERTERS
from vtzoo.operators.clip4clip.model import CLIP4ClipModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped
from vtzoo.registry.weights import load_state_dict_strict


def config_from_case(config: dict[str, Any]) -> CLIP4ClipConfig:
    """The :class:`CLIP4ClipConfig` of a golden case's ``config.json``."""
    tiny = config.get("tiny")
    if not isinstance(tiny, dict) or not all(k in tiny for k in ("clip", "cross_config_effective", "task_config")):
        raise GoldenError("clip4clip case config.json needs tiny.clip, tiny.cross_config_effective and tiny.task_config")
    try:
        return CLIP4ClipConfig.from_original(tiny)
    except (KeyError, TypeError, ValueError) as exc:
        raise GoldenError(f"clip4clip case config.json: {exc}") from None


def run_case(case: GoldenCase) -> dict[str, Any]:
    config = config_from_case(case.config)
    model = CLIP4ClipModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
    inputs = case.inputs()
    # the original dataloader's layout: (B, pair, L) ids, (B, pair, T, 1, 3, H, W) video
    input_ids = inputs["input_ids"].reshape(-1, inputs["input_ids"].shape[-1])
    video = inputs["video"]
    video_mask = inputs["video_mask"].reshape(-1, inputs["video_mask"].shape[-1])
    frames_per_video = video_mask.shape[1]
    video = video.reshape(-1, frames_per_video, *video.shape[-3:]).float()

    captured: dict[str, torch.Tensor] = {}
    if config.sim_header == "seqTransf":
        model.transformerClip.register_forward_hook(lambda _m, _i, out: captured.__setitem__("temporal", out))
    with torch.no_grad():
        text = model.encode_text(input_ids).pooled
        frames = model.encode_frames(video)
        logits = model.similarity_logits(text, frames, video_mask)
    outputs: dict[str, Any] = {
        "sequence_output": text.unsqueeze(1),
        "visual_output": frames,
        "sim_logits": logits,
    }
    for name in case.outputs():
        if name in outputs:
            continue
        if name == "temporal_transformer_output" and "temporal" in captured:
            outputs[name] = captured["temporal"]
        else:
            outputs[name] = Skipped(f"internal tensor {name!r} of the original is not exposed by the port")
    return outputs


GOLDEN_RUNNERS = {"clip4clip": run_case}
