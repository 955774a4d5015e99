"""Golden parity runner: rebuild a Frozen in Time case from its config.json and recompute it.

The case's config records the original's constructor arguments (``frozen_in_time_args``), the
effective SpaceTimeTransformer arguments and the DistilBERT config; the model is built from
those alone (:meth:`FrozenInTimeConfig.from_original`), the original state dict goes through
the family's converter (so cases saved from a checkpoint with another frame count exercise the
temporal-embedding fixes), and every output the original recorded is recomputed.
"""

from __future__ import annotations

import re

import torch

from vtzoo.operators.frozen_in_time.config import FrozenInTimeConfig
from vtzoo.operators.frozen_in_time.convert import CONVERTERS
from vtzoo.operators.frozen_in_time.model import FrozenInTimeModel, sim_matrix
from vtzoo.registry.golden import GoldenCase, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict

_BLOCK_OUTPUT = re.compile(r"^video_block(\d+)_output$")


def run_case(case: GoldenCase) -> dict[str, torch.Tensor | Skipped]:
    config = FrozenInTimeConfig.from_original(case.config)
    model = FrozenInTimeModel(config).eval()
    state_dict = CONVERTERS["original"](as_float32(case.original_state_dict()), config)
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
