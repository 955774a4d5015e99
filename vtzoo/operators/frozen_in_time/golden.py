"""Golden parity runner: rebuild a Frozen in Time case from its config.json and recompute it.

The case's config records the original's constructor arguments (``frozen_in_time_args``), the
effective SpaceTimeTransformer arguments and the DistilBERT config; the model is built from
those alone, the original state dict goes through the family's converter (so cases saved from
a checkpoint with another frame count exercise the temporal-embedding fixes), and every output
the original recorded is recomputed.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from vtzoo.operators.frozen_in_time.config import FrozenInTimeConfig
from vtzoo.operators.frozen_in_time.convert import convert_original_state_dict
from vtzoo.operators.frozen_in_time.model import FrozenInTimeModel, sim_matrix
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict

_BLOCK_OUTPUT = re.compile(r"^video_block(\d+)_output$")


def config_from_case(values: dict[str, Any]) -> FrozenInTimeConfig:
    """Translate the original's constructor arguments (as a case records them) to a config."""
    try:
        fit = values["frozen_in_time_args"]
        stt = values["space_time_transformer_effective_args"]
        bert = values["distilbert_config"]
    except KeyError as exc:
        raise GoldenError(f"Frozen in Time case config lacks {exc} (frozen_in_time_args, "
                          "space_time_transformer_effective_args, distilbert_config are required)") from None
    video_params, text_params = fit["video_params"], fit["text_params"]
    if video_params.get("model", "SpaceTimeTransformer") != "SpaceTimeTransformer":
        raise GoldenError(f"unsupported video model {video_params['model']!r}")
    if stt.get("attention_style", "frozen-in-time") != "frozen-in-time":
        raise GoldenError(f"unsupported attention_style {stt['attention_style']!r}")
    if stt.get("representation_size"):
        raise GoldenError("representation_size (pre-logits layer) is not used by FrozenInTime")
    if bert.get("sinusoidal_pos_embds"):
        raise GoldenError("sinusoidal DistilBERT position embeddings are not supported")
    eps = re.search(r"eps=([0-9.eE+-]+)", str(stt.get("norm_layer", "")))
    return FrozenInTimeConfig(
        img_size=stt["img_size"],
        patch_size=stt["patch_size"],
        in_chans=stt.get("in_chans", 3),
        embed_dim=stt["embed_dim"],
        depth=stt["depth"],
        num_heads=stt["num_heads"],
        mlp_ratio=stt.get("mlp_ratio", 4.0),
        qkv_bias=stt.get("qkv_bias", True),
        qk_scale=stt.get("qk_scale"),
        layer_norm_eps=float(eps.group(1)) if eps else 1e-6,
        # FrozenInTime reads num_frames from video_params (default 4) for both the tower and
        # the temporal fix on load.
        num_frames=video_params.get("num_frames", stt["num_frames"]),
        time_init=video_params.get("time_init", "zeros"),
        text_model=text_params["model"],
        text_vocab_size=bert["vocab_size"],
        text_dim=bert["dim"],
        text_layers=bert["n_layers"],
        text_heads=bert["n_heads"],
        text_hidden_dim=bert["hidden_dim"],
        text_max_position_embeddings=bert["max_position_embeddings"],
        text_activation=bert.get("activation", "gelu"),
        text_pad_token_id=bert.get("pad_token_id", 0),
        projection=fit.get("projection", "minimal"),
        projection_dim=fit.get("projection_dim", 256),
        load_temporal_fix=fit.get("load_temporal_fix", "zeros"),
    )


def run_case(case: GoldenCase) -> dict[str, torch.Tensor | Skipped]:
    config = config_from_case(case.config)
    model = FrozenInTimeModel(config).eval()
    state_dict = convert_original_state_dict(as_float32(case.original_state_dict()), config)
    load_state_dict_strict(model, state_dict, str(case.path))
    inputs = case.inputs()
    expected = case.outputs()
    results: dict[str, torch.Tensor | Skipped] = {}
    with torch.inference_mode():
        # the temporal table after conversion (a checkpoint with another frame count is fitted)
        results["loaded_temporal_embed"] = model.video_model.temporal_embed.detach().clone()
        text = video = None
        if "text_input_ids" in inputs:
            ids, mask = inputs["text_input_ids"], inputs["text_attention_mask"]
            hidden = model.text_model(input_ids=ids, attention_mask=mask).last_hidden_state
            results["text_last_hidden_state"] = hidden
            results["text_cls_hidden"] = hidden[:, 0]
            text = results["text_embeddings"] = model.txt_proj(hidden[:, 0])
        if "video" in inputs:
            clip = inputs["video"]
            results["video_tokens_after_pos_embed"] = model.video_model.embed(clip)
            blocks: list[torch.Tensor] = []
            features = results["video_features"] = model.video_model(clip, block_outputs=blocks)
            for i, out in enumerate(blocks):
                results[f"video_block{i}_output"] = out
            video = results["video_embeddings"] = model.vid_proj(features)
        if text is not None and video is not None:
            results["sim_matrix"] = sim_matrix(text, video)
    for name in expected:
        if name not in results:
            match = _BLOCK_OUTPUT.match(name)
            reason = (
                f"block {match.group(1)} does not exist in this config" if match else "not an output vtzoo computes"
            )
            results[name] = Skipped(reason)
    return results


GOLDEN_RUNNERS = {"frozen_in_time": run_case}
