"""Golden parity runner for DRL cases (``vtzoo verify-golden``).

The variant is read from the case's ``config.json`` only: CLIP sizes from ``tiny.clip`` and the
DRL settings (interaction, agg_module, wti_arch, cdcr, ...) from ``tiny.model_config`` -- the
fields of the original's argparse namespace.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.operators.drl.config import DRLConfig
from vtzoo.operators.drl.convert import convert_original_state_dict
from vtzoo.operators.drl.model import DRLModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped
from vtzoo.registry.weights import load_state_dict_strict

_CLIP_FIELDS = (
    "embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size", "vision_heads",
    "context_length", "vocab_size", "transformer_width", "transformer_heads", "transformer_layers",
)
_HEAD_FIELDS = ("interaction", "agg_module", "wti_arch", "cdcr", "cdcr_alpha1", "cdcr_alpha2", "cdcr_lambda",
                "max_words", "max_frames")


def config_from_case(case_config: Mapping[str, Any]) -> DRLConfig:
    """A :class:`DRLConfig` from a golden case's config.json (original argparse field names)."""
    tiny = case_config.get("tiny") or {}
    clip, args = tiny.get("clip"), tiny.get("model_config")
    if not isinstance(clip, dict) or not isinstance(args, dict):
        raise GoldenError("DRL case config.json needs 'tiny.clip' (CLIP sizes) and 'tiny.model_config' (DRL args)")
    values: dict[str, Any] = {k: clip[k] for k in _CLIP_FIELDS if k in clip}
    values.update({k: args[k] for k in _HEAD_FIELDS if k in args})
    if args.get("interaction") == "xti" and args.get("cross_num_hidden_layers") is not None:
        # The original sets the shared cross config's layer count, which its seqTransf module reads too.
        values["cross_layers"] = values["temporal_layers"] = int(args["cross_num_hidden_layers"])
    if str(args.get("base_encoder", "ViT-B/32")) not in ("ViT-B/32", "ViT-B/16", "ViT-L/14"):
        raise GoldenError(f"unsupported base_encoder {args.get('base_encoder')!r}")
    return DRLConfig(**values)


def run_case(case: GoldenCase) -> dict[str, torch.Tensor | Skipped]:
    config = config_from_case(case.config)
    model = DRLModel(config).eval()
    load_state_dict_strict(model, convert_original_state_dict(case.original_state_dict(), config), str(case.path))
    inputs, expected = case.inputs(), case.outputs()
    text_mask, video_mask = inputs["text_mask"], inputs["video_mask"]
    train_seed = int((case.config.get("case") or {}).get("train_seed", 0))
    out: dict[str, torch.Tensor | Skipped] = {}
    with torch.no_grad():
        text_feat = model.encode_text(inputs["text_ids"])
        frames = model.encode_frames(inputs["video"])
        video_feat = model.aggregate_frames(frames, video_mask)
        out.update(text_feat=text_feat, video_frame_feat=frames, video_feat=video_feat)

        result = model.interact(text_feat, video_feat, text_mask, video_mask, train=False)
        out.update(t2v_logits=result.t2v, v2t_logits=result.v2t)
        extras = result.extras
        for name, key in (("token_sim", "token_sim"), ("text_weight", "text_weight"), ("video_weight", "video_weight"),
                          ("wti_t2v_logits", "wti_t2v"), ("wti_v2t_logits", "wti_v2t")):
            if key in extras:
                out[name] = extras[key]

        # Training-mode values: random draws (cdcr 1, xti's dropout) follow the global generator,
        # seeded as the case generator seeded it before each training-mode call.
        model.train()
        torch.manual_seed(train_seed)
        out["train_loss"] = model(inputs["text_ids"], text_mask, inputs["video"], video_mask)
        torch.manual_seed(train_seed)
        train = model.interact(text_feat, video_feat, text_mask, video_mask, train=True)
        out.update(train_t2v_logits=train.t2v, train_v2t_logits=train.v2t,
                   train_cdcr_loss=torch.as_tensor(train.cdcr_loss, dtype=torch.float32))
        model.eval()
    for name in expected:
        out.setdefault(name, Skipped("an intermediate of the original this port does not expose"))
    return out


GOLDEN_RUNNERS = {"drl": run_case}
