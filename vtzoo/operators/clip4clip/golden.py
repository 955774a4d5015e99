"""Golden parity runner for CLIP4Clip cases (``vtzoo verify-golden``).

The model is built from the case's ``config.json`` alone: the ``tiny`` block holds the CLIP sizes
(``clip``), the effective cross config (``cross_config_effective``) and the original's task
config (``task_config``: sim_header, linear_patch, max_words, max_frames, ...).
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.operators.clip4clip.config import CLIP4ClipConfig
from vtzoo.operators.clip4clip.convert import convert_original_state_dict
from vtzoo.operators.clip4clip.model import CLIP4ClipModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped
from vtzoo.registry.weights import load_state_dict_strict


def config_from_case(config: dict[str, Any]) -> CLIP4ClipConfig:
    """Map the original's (clip sizes, cross_config.json, task_config) to :class:`CLIP4ClipConfig`."""
    try:
        tiny = config["tiny"]
        clip, cross, task = tiny["clip"], tiny["cross_config_effective"], tiny["task_config"]
    except KeyError as exc:
        raise GoldenError(f"clip4clip case config.json lacks tiny.{exc.args[0]}") from None
    if not task.get("loose_type", True) and task["sim_header"] != "tightTransf":
        raise GoldenError("loose_type=False is only defined for sim_header tightTransf in the original")
    if task.get("loose_type", True) and task["sim_header"] == "tightTransf":
        raise GoldenError("tightTransf needs loose_type=False in the original (it asserts so)")
    return CLIP4ClipConfig(
        sim_header=task["sim_header"],
        linear_patch=task.get("linear_patch", "2d"),
        max_words=task["max_words"],
        max_frames=task["max_frames"],
        cross_num_hidden_layers=task["cross_num_hidden_layers"],
        cross_hidden_size=cross["hidden_size"],
        cross_num_attention_heads=cross["num_attention_heads"],
        cross_hidden_dropout_prob=cross.get("hidden_dropout_prob", 0.1),
        embed_dim=clip["embed_dim"],
        image_resolution=clip["image_resolution"],
        vision_layers=clip["vision_layers"],
        vision_width=clip["vision_width"],
        vision_patch_size=clip["vision_patch_size"],
        vision_heads=clip.get("vision_heads", clip["vision_width"] // 64),
        context_length=clip["context_length"],
        vocab_size=clip["vocab_size"],
        transformer_width=clip["transformer_width"],
        transformer_heads=clip.get("transformer_heads", clip["transformer_width"] // 64),
        transformer_layers=clip["transformer_layers"],
    )


def run_case(case: GoldenCase) -> dict[str, Any]:
    config = config_from_case(case.config)
    model = CLIP4ClipModel(config).eval()
    load_state_dict_strict(model, convert_original_state_dict(case.original_state_dict(), config), str(case.path))
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
