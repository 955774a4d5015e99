"""Golden parity runners for MDMMT (papermsucode/mdmmt) and MMT (gabeur/mmt) cases.

The model is built from the case's config.json alone (the original constructor arguments), the
original state dict is converted, and every output tensor of the case is recomputed. When a
case stores the raw per-video expert sequences (``raw.*``), the model is fed from vtzoo's own
collate of them, so the collate is checked by the same outputs.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from vtzoo.operators.mdmmt.collate import ExpertSequence, collate_mdmmt, collate_mmt
from vtzoo.operators.mdmmt.config import MdmmtConfig
from vtzoo.operators.mdmmt.convert import CONVERTERS
from vtzoo.operators.mdmmt.model import MdmmtModel, average_caption_similarities
from vtzoo.registry.golden import GoldenCase, GoldenError
from vtzoo.registry.weights import load_state_dict_strict


def mdmmt_config_from_case(case_config: dict[str, Any]) -> MdmmtConfig:
    """MdmmtConfig from the case's original ``BertVID`` / ``BertTXT`` constructor arguments."""
    return _config(case_config, "BertVID")


def mmt_config_from_case(case_config: dict[str, Any]) -> MdmmtConfig:
    """MdmmtConfig (architecture "mmt") from the case's original ``CENet`` arguments + dataset options."""
    return _config(case_config, "CENet")


def _config(case_config: dict[str, Any], block: str) -> MdmmtConfig:
    if block not in case_config:
        raise GoldenError(f"the case's config.json has no {block!r} block")
    try:
        return MdmmtConfig.from_original(case_config)
    except ValueError as exc:
        raise GoldenError(str(exc)) from None


def _build(config: MdmmtConfig, case: GoldenCase) -> MdmmtModel:
    model = MdmmtModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
    return model


def _raw_videos(inputs: dict[str, torch.Tensor], batch: int, pattern: str) -> list[dict[str, ExpertSequence]] | None:
    """``raw.*`` entries -> per-video expert sequences (None when the case stores none)."""
    videos: list[dict[str, ExpertSequence]] = [{} for _ in range(batch)]
    found = False
    for key in inputs:
        match = re.fullmatch(pattern, key)
        if match:
            found = True
            expert, index = match.group("expert"), int(match.group("video"))
            timings = inputs.get(key[: -len("features")] + "timings")
            if timings is not None and bool(torch.isnan(timings).any()):
                # the originals' marker for an expert without timestamps; vtzoo spells it None
                timings = None
            videos[index][expert] = ExpertSequence(inputs[key], timings)
    return videos if found else None


def _flatten(prefix: str, tensors: dict[str, torch.Tensor], out: dict[str, Any]) -> None:
    for name, value in tensors.items():
        out[f"{prefix}.{name}"] = value


def run_mdmmt_case(case: GoldenCase) -> dict[str, Any]:
    config = mdmmt_config_from_case(case.config)
    model = _build(config, case)
    inputs = case.inputs()
    names = config.expert_names
    batch = inputs[f"features.{names[0]}"].shape[0]
    raw = _raw_videos(inputs, batch, r"raw\.(?P<expert>.+)\.v(?P<video>\d+)\.features")
    if raw is not None:
        collated = collate_mdmmt(raw, config.experts)
        feats, feats_t, feats_ind = collated.features, collated.features_t, collated.features_ind
    else:
        feats = {n: inputs[f"features.{n}"] for n in names}
        feats_t = {n: inputs[f"features_t.{n}"] for n in names}
        feats_ind = {n: inputs[f"features_ind.{n}"] for n in names}
    out: dict[str, Any] = {}
    with torch.no_grad():
        video = model.encode_video(feats, feats_t, feats_ind)
        text = model.encode_text(
            inputs["text_input_ids"].long(), inputs["text_attention_mask"].long(), inputs["text_token_type_ids"].long()
        )
        sim = model.similarity(text.expert_embeddings, text.weights, video.expert_embeddings, video.available)
    tok = video.tokens
    out["video_embd"] = video.expert_embeddings.flatten(1)
    out["video_expert_embd"] = video.expert_embeddings
    out["vid_bert_last_hidden"] = video.last_hidden
    for key in ("input_ids", "token_type_ids", "position_ids", "attention_mask", "features"):
        out[f"vid_bert_in.{key}"] = getattr(tok, key)
    out["text_last_hidden"] = text.last_hidden
    out["text_cls"] = text.cls
    out["text_expert_embd"] = text.expert_embeddings
    out["text_moe_weights"] = text.weights
    out["text_embd"] = (text.expert_embeddings * text.weights[..., None]).flatten(1)
    out["similarity_t2v"] = sim
    return out


def run_mmt_case(case: GoldenCase) -> dict[str, Any]:
    config = mmt_config_from_case(case.config)
    model = _build(config, case)
    inputs = case.inputs()
    names = config.expert_names
    batch = inputs[f"features.{names[0]}"].shape[0]
    raw = _raw_videos(inputs, batch, r"raw\.v(?P<video>\d+)\.(?P<expert>.+)\.features")
    if raw is not None:
        c = collate_mmt(raw, config.experts)
        feats, feats_t, feats_ind, maxpool, avgpool = c.features, c.features_t, c.features_ind, c.features_maxpool, c.features_avgpool
    else:
        feats, feats_t, feats_ind, maxpool, avgpool = (
            {n: inputs[f"{k}.{n}"] for n in names}
            for k in ("features", "features_t", "features_ind", "features_maxpool", "features_avgpool")
        )
    token_ids = inputs["token_ids"].long()
    b, k, length, _ = token_ids.shape
    input_ids = token_ids[..., 0].reshape(b * k, length)
    mask = token_ids[..., 1].reshape(b * k, length)
    positions = torch.arange(length)[None].expand(b * k, length)
    types = torch.zeros_like(input_ids)
    out: dict[str, Any] = {
        "text_bert_in.input_ids": input_ids,
        "text_bert_in.token_type_ids": types,
        "text_bert_in.position_ids": positions,
        "text_bert_in.attention_mask": mask,
    }
    max_pos = config.max_position_embeddings - 1
    with torch.no_grad():
        text = model.encode_text(input_ids, mask, types, positions)
        video = model.encode_video(feats, feats_t, feats_ind, maxpool)
        for n in names:
            out[f"reduced_avgpool.{n}"] = model.video_dim_reduce[n](avgpool[n])
            out[f"features_t_clamped_in_place.{n}"] = torch.clamp(feats_t[n], 0, max_pos)
        for variant, keep in (("keep_missing_true", True), ("keep_missing_false", False)):
            model.config.keep_missing_modalities = keep
            out[f"vid_weights.{variant}"] = model.video_weights(video.available)
            out[f"pair_weights.{variant}"] = model.pair_weights(text.weights, video.available)
            sims = model.similarity(text.expert_embeddings, text.weights, video.expert_embeddings, video.available)
            out[f"conf_indep.{variant}"] = sims
            out[f"conf_avg.{variant}"] = average_caption_similarities(sims, k)
    tok = video.tokens
    for key in ("input_ids", "token_type_ids", "position_ids", "attention_mask", "features"):
        out[f"vid_bert_in.{key}"] = getattr(tok, key)
    out["vid_bert_last_hidden"] = video.last_hidden
    _flatten("reduced_maxpool", tok.reduced_maxpool, out)
    _flatten("reduced_features", tok.reduced_features, out)
    gu = {n: text.expert_embeddings[:, i] for i, n in enumerate(names)}
    _flatten("text_gu", gu, out)
    out["text_last_hidden"] = text.last_hidden
    out["text_cls"] = text.cls
    out["text_moe_softmax"] = text.weights.view(b, k, -1)
    out["text_weights"] = text.weights.view(b, k, -1)
    out["vid_embds"] = video.expert_embeddings
    out["text_embds"] = text.expert_embeddings.view(b, k, len(names), -1).permute(0, 2, 1, 3)
    return out


GOLDEN_RUNNERS = {"mdmmt": run_mdmmt_case, "mmt": run_mmt_case}
