"""Golden parity runner for COOT: ``kind: model`` (the four networks, retrieval, losses) and
``kind: loss`` (the cycle-consistency loss on fixed embeddings).

Everything is read from the case's ``config.json`` (the original's network blocks and dataset
feature sizes, the loss constructor settings and seeds), never from the folder name.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from vtzoo.operators.coot.config import CootConfig
from vtzoo.operators.coot.convert import CONVERTERS
from vtzoo.operators.coot.losses import ContrastiveLoss, ContrastiveWeights, CycleConsistencyLoss, contrastive_total
from vtzoo.operators.coot.model import CootModel
from vtzoo.registry.golden import GoldenCase, GoldenError
from vtzoo.registry.weights import load_state_dict_strict


def config_from_case(config: Mapping[str, Any]) -> CootConfig:
    """The COOT config of a model case: its (tiny) network blocks and feature sizes, laid out as
    the original's experiment yaml for :meth:`CootConfig.from_original`."""
    block = config.get("tiny_config") or config.get("model_config") or config.get("config")
    if not isinstance(block, Mapping) or "networks" not in block:
        raise GoldenError("coot case: config.json needs tiny_config.networks (the original's net_* blocks)")
    dataset = dict(block.get("dataset") or {})
    dims = block.get("network_input_dims") or {}
    dataset.setdefault("vid_feat_dim", dims.get("net_video_local"))
    dataset.setdefault("text_feat_dim", dims.get("net_text_local"))
    if dataset["vid_feat_dim"] is None or dataset["text_feat_dim"] is None:
        raise GoldenError("coot case: feature sizes missing (tiny_config.dataset.vid_feat_dim / text_feat_dim)")
    losses = block.get("train_losses")
    if not losses:  # fall back to the full paper config's training block, when the case has one
        full = (config.get("full_config") or {}).get(config.get("full_config_this_variant", ""), {})
        losses = full.get("train") or {}
    return CootConfig.from_original({**block["networks"], "dataset_val": dataset, "train": losses})


def _normed(x: torch.Tensor) -> torch.Tensor:
    # the validation's normalisation: no epsilon
    return x / torch.sqrt((x**2).sum(dim=-1, keepdim=True))


def retrieval_ranks(similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The original's ``compute_retrieval_cosine``: rank of the diagonal item and the top-1 per row."""
    d = similarity.detach().cpu().numpy()
    ranks, top1 = np.empty(len(d)), np.empty(len(d))
    for i in range(len(d)):
        order = np.argsort(d[i])[::-1]
        ranks[i] = np.where(order == i)[0][0]
        top1[i] = order[0]
    return torch.from_numpy(ranks).long(), torch.from_numpy(top1).long()


def _model_case(case: GoldenCase) -> dict[str, Any]:
    config = config_from_case(case.config)
    model = CootModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
    x = case.inputs()
    out: dict[str, Any] = {}
    with torch.no_grad():
        video = model.encode_video(x["vid_feat"], x["vid_feat_mask"], x["vid_feat_len"], x["clip_feat"],
                                   x["clip_feat_mask"], x["clip_feat_len"], x["clip_num"])  # fmt: skip
        text = model.encode_text(x["par_feat"], x["par_feat_mask"], x["par_feat_len"], x["sent_feat"],
                                 x["sent_feat_mask"], x["sent_feat_len"], x["sent_num"])  # fmt: skip
        for prefix, level, high, low, ctx in (("vid", video, "vid", "clip", "video"), ("par", text, "par", "sent", "text")):
            out[f"{high}_emb"], out[f"{low}_emb"], out[f"{high}_context"] = level.high, level.low, level.context
            out[f"{low}_emb_reshape"], out[f"{low}_emb_mask"], out[f"{low}_emb_lens"] = (
                level.low_padded, level.low_mask, level.low_lengths)  # fmt: skip
            whole = "vid_feat" if prefix == "vid" else "par_feat"
            parts = "clip_feat" if prefix == "vid" else "sent_feat"
            out[f"debug.{ctx}_local_tokens_on_{whole}"] = level.context_tokens
            out[f"debug.{ctx}_local_tokens_on_{parts}"] = level.low_tokens
            out[f"debug.{ctx}_global_tokens"] = level.high_tokens
            out[f"{high}_emb_normed"], out[f"{low}_emb_normed"] = _normed(level.high), _normed(level.low)
        out["sim_vid_par"] = out["vid_emb_normed"] @ out["par_emb_normed"].T
        out["sim_clip_sent"] = out["clip_emb_normed"] @ out["sent_emb_normed"].T
        for name, sim in (("vid2par", out["sim_vid_par"]), ("par2vid", out["sim_vid_par"].T),
                          ("clip2sent", out["sim_clip_sent"]), ("sent2clip", out["sim_clip_sent"].T)):  # fmt: skip
            out[f"retrieval.{name}_ranks"], out[f"retrieval.{name}_top1"] = retrieval_ranks(sim)
        weights = ContrastiveWeights(config.weight_high, config.weight_high_internal, config.weight_low,
                                     config.weight_low_internal, config.weight_context,
                                     config.weight_context_internal)  # fmt: skip
        out["loss.contrastive_total"] = contrastive_total(ContrastiveLoss(config.margin), video.high, text.high,
                                                          video.low, text.low, video.context, text.context,
                                                          weights)  # fmt: skip
        cc_args = (video.low_padded, video.low_mask, video.low_lengths, text.low_padded, text.low_mask,
                   text.low_lengths)  # fmt: skip
        every = CycleConsistencyLoss(num_samples=-1)(*cc_args)
        out["loss.cc_clip_clip_all"], out["loss.cc_sent_sent_all"] = every.clip_clip, every.sent_sent
        seed = case.config.get("seed_cc_sampling")
        if seed is not None:
            torch.manual_seed(int(seed))
        sampled = CycleConsistencyLoss(num_samples=1)(*cc_args)
        out["loss.cc_weighted_sampled"] = config.loss_cycle_cons * (sampled.clip_clip + sampled.sent_sent)
        out["loss.cc_sample_idx_clip"], out["loss.cc_sample_idx_sent"] = sampled.sample_idx_clip, sampled.sample_idx_sent
    return out


def _loss_case(case: GoldenCase) -> dict[str, Any]:
    cfg = case.config
    loss_class = str(cfg.get("loss_class", "CycleConsistencyLoss"))
    if not loss_class.endswith("CycleConsistencyLoss"):
        raise GoldenError(f"coot: loss case for {loss_class!r} is not supported (CycleConsistencyLoss only; the "
                          "contrastive losses are covered by the model cases)")  # fmt: skip
    x = case.inputs()
    args = (x["clip_emb"], x["clip_mask"], x["clip_lens"], x["sent_emb"], x["sent_mask"], x["sent_lens"])
    ctor_all = cfg.get("ctor_all") or {"num_samples": -1, "compute_half_cycles": True}
    ctor_sampled = cfg.get("ctor_sampled_trainer_default") or {"num_samples": 1, "compute_half_cycles": False}
    weight = float(cfg.get("loss_cycle_cons_weight", 0.001))
    out: dict[str, Any] = {}
    with torch.no_grad():
        every = CycleConsistencyLoss(int(ctor_all["num_samples"]), bool(ctor_all.get("compute_half_cycles", False)))(*args)
        out["clip_clip_loss_all"], out["sent_sent_loss_all"] = every.clip_clip, every.sent_sent
        if every.clip_sent is not None:
            out["clip_sent_loss_all"], out["sent_clip_loss_all"] = every.clip_sent, every.sent_clip
        out["clip_clip_loss_per_position"] = every.clip_clip_per_position
        out["sent_sent_loss_per_position"] = every.sent_sent_per_position
        for name, hop in (("clip_to_sent", every.clip_to_sent), ("clip_cycle", every.clip_cycle),
                          ("sent_to_clip", every.sent_to_clip), ("sent_cycle", every.sent_cycle)):  # fmt: skip
            out[f"debug.{name}_soft_nn"] = hop.soft_nn
            out[f"debug.{name}_{'alpha' if 'to' in name else 'beta'}"] = hop.weights
            out[f"debug.{name}_neg_dist_masked"] = hop.proximity
        out["cc_loss_weighted_all"] = weight * (every.clip_clip + every.sent_sent)
        seed = cfg.get("seed_cc_sampling")
        if seed is not None:
            torch.manual_seed(int(seed))
        sampled = CycleConsistencyLoss(int(ctor_sampled["num_samples"]),
                                       bool(ctor_sampled.get("compute_half_cycles", False)))(*args)  # fmt: skip
        out["clip_clip_loss_sampled"], out["sent_sent_loss_sampled"] = sampled.clip_clip, sampled.sent_sent
        out["cc_loss_weighted_sampled"] = weight * (sampled.clip_clip + sampled.sent_sent)
        out["sample_idx_clip"], out["sample_idx_sent"] = sampled.sample_idx_clip, sampled.sample_idx_sent
    return out


def run_case(case: GoldenCase) -> dict[str, Any]:
    """Recompute every output of a COOT case (``golden.kind``: ``model`` or ``loss``)."""
    if case.kind == "model":
        return _model_case(case)
    if case.kind == "loss":
        return _loss_case(case)
    raise GoldenError(f"coot: unsupported case kind {case.kind!r} (model | loss)")


GOLDEN_RUNNERS = {"coot": run_case}
