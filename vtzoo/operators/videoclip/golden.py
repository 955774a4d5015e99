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
from vtzoo.operators.videoclip.convert import convert_original_state_dict
from vtzoo.operators.videoclip.model import VideoCLIPModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict

SUPPORTED = {
    "model_cls": "MMFusionSeparate",
    "video_encoder_cls": "MMBertForEncoder",
    "text_encoder_cls": "BertModel",
    "mm_encoder_cls": None,
}
_BERT_FIELDS = (
    "vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act", "max_position_embeddings",
    "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "pad_token_id",
)  # fmt: skip


def config_from_case(case: GoldenCase) -> VideoCLIPConfig:
    """The case's original configuration as a :class:`VideoCLIPConfig` (no S3D: the case feeds features)."""
    raw = case.config
    mmpt = raw.get("mmpt_config", {})
    model_cfg, dataset = mmpt.get("model", {}), mmpt.get("dataset", {})
    for key, expected in SUPPORTED.items():
        if key in model_cfg and model_cfg[key] != expected:
            raise GoldenError(f"{case.path}: {key}={model_cfg[key]!r} is not supported (VideoCLIP is {expected!r})")
    bert = raw.get("bert_config")
    if not isinstance(bert, dict):
        raise GoldenError(f"{case.path}: config.json has no 'bert_config' block")
    special = raw.get("special_token_ids", {})
    values: dict[str, Any] = {k: bert[k] for k in _BERT_FIELDS if k in bert}
    values.update(
        text_num_hidden_layers=int(raw.get("text_encoder_num_hidden_layers", bert.get("num_hidden_layers", 12))),
        video_num_hidden_layers=int(
            raw.get("video_encoder_num_hidden_layers", model_cfg.get("num_hidden_video_layers", 6))
        ),
        video_input_dim=int(raw.get("video_input_dim", 512)),
        max_video_len=int(dataset.get("max_video_len", 32)),
        max_len=int(dataset.get("max_len", 96)),
        cls_token_id=int(special.get("cls", 101)),
        sep_token_id=int(special.get("sep", 102)),
        with_s3d=False,
    )
    return VideoCLIPConfig(**values)


def build_from_case(case: GoldenCase) -> VideoCLIPModel:
    model = VideoCLIPModel(config_from_case(case))
    state_dict = convert_original_state_dict(as_float32(case.original_state_dict()))
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
