"""Golden parity runner for DRL cases (``vtzoo verify-golden``).

The variant is read from the case's ``config.json`` only: its ``tiny`` block holds the CLIP sizes
(``clip``) and the original's arguments (``model_config``: interaction, agg_module, wti_arch,
cdcr, ...), mapped by :meth:`DRLConfig.from_original`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vtzoo.operators.drl.config import DRLConfig
from vtzoo.operators.drl.convert import CONVERTERS
from vtzoo.operators.drl.model import DRLModel
from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped
from vtzoo.registry.weights import load_state_dict_strict


def config_from_case(case_config: Mapping[str, Any]) -> DRLConfig:
    """The :class:`DRLConfig` of a golden case's config.json."""
    tiny = case_config.get("tiny") or {}
    if not isinstance(tiny.get("clip"), dict) or not isinstance(tiny.get("model_config"), dict):
        raise GoldenError("DRL case config.json needs 'tiny.clip' (CLIP sizes) and 'tiny.model_config' (DRL args)")
    try:
        return DRLConfig.from_original(tiny)
    except (TypeError, ValueError) as exc:
        raise GoldenError(f"DRL case config.json: {exc}") from None


def run_case(case: GoldenCase) -> dict[str, torch.Tensor | Skipped]:
    config = config_from_case(case.config)
    model = DRLModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
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
