"""Golden parity runner for VideoCLIP (family ``videoclip``).

Builds :class:`VideoCLIPModel` from the case's ``bert_config`` / ``mmpt_config`` blocks alone,
converts the original ``MMFusionSeparate`` state dict and recomputes every recorded tensor:
pooled vectors, the similarity matrix, both towers' sequences and hidden states, and exactly
what each BERT was fed (ids, masks, token types, position ids).
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.operators.videoclip.config import VideoCLIPConfig
from vtzoo.operators.videoclip.convert import CONVERTERS
from vtzoo.operators.videoclip.model import VideoCLIPModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict


def config_from_case(case: GoldenCase) -> VideoCLIPConfig:
    """The case's original configuration (no S3D: the case feeds features)."""
    try:
        return VideoCLIPConfig.from_original(case.config)
    except ValueError as exc:
        raise GoldenError(f"{case.path}: {exc}") from None


def build_from_case(case: GoldenCase) -> VideoCLIPModel:
    config = config_from_case(case)
    model = VideoCLIPModel(config)
    state_dict = CONVERTERS["original"](as_float32(case.original_state_dict()), config)
    load_state_dict_strict(model, state_dict, str(case.path))
    return model.eval()


def run_case(case: GoldenCase) -> dict[str, Any]:
    model = build_from_case(case)
    inputs = case.inputs()
    missing = {"caps", "cmasks", "vfeats", "vmasks"} - set(inputs)
    if missing:
        raise GoldenError(f"{case.path}: inputs.safetensors lacks {sorted(missing)}")
    caps, cmasks, vfeats, vmasks = inputs["caps"], inputs["cmasks"], inputs["vfeats"], inputs["vmasks"]
    with torch.inference_mode():
        # the original's model takes whatever steps it is given (its aligner cuts before)
        video = model.forward_video(vfeats.float(), vmasks, caps, cmasks, truncate=False)
        text = model.forward_text(caps, cmasks)
    outputs: dict[str, Any] = {
        "pooled_video": video.pooled,
        "pooled_text": text.pooled,
        "sim_text_video": model.similarity(text.pooled, video.pooled),
        "video_sequence_output": video.sequence,
        "text_sequence_output": text.sequence,
        "debug_video_tokens_mlp": video.video_tokens,
    }
    for tower, result in (("video", video), ("text", text)):
        for name, value in result.encoder_inputs.items():
            outputs[f"debug_{tower}_encoder_{name}"] = value
        for i, hidden in enumerate(result.hidden_states or ()):
            outputs[f"debug_{tower}_hidden_states_{i}"] = hidden
    for name in case.outputs():
        if name not in outputs:
            outputs[name] = Skipped("not an output of the VideoCLIP forward")
    return outputs


GOLDEN_RUNNERS = {"videoclip": run_case}
