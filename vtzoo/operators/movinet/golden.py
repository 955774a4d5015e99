"""Golden parity runner for MoViNet cases (reference: the Atze00/MoViNet-pytorch port).

The model is built from config.json alone (:meth:`MovinetConfig.from_original`: ``variant`` or
``model_cfg.name``, ``mode`` and the ``constructor`` arguments), the weights go through the
family's ``original`` converter. The call schedule comes from ``computation``: one whole-clip call
(outputs ``logits``/``pooled_features``/``intermediate.*``, or with a prefix such as ``full.``),
a chunked stream (``stream.*``, stacked over chunks) and fresh calls on prefixes (``prefix.*``).
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.registry.golden import GoldenCase, GoldenError, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict


def regenerate_weights(recipe: dict[str, Any], shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Seeded weights of the ``movinet-seeded-v1`` recipe (cases too large to store their weights).

    Keys in sorted order, one ``torch.Generator(seed)`` for all: conv/classifier weights
    N(0, 1/fan_in), biases N(0, 0.1²), BatchNorm weight U(0.6, 1.4), bias N(0, 0.2²), running_mean
    N(0, 0.2²), running_var U(0.5, 2.0), ReZero ``alpha`` and positional-encoding scales U(0.3, 1.0),
    ``num_batches_tracked`` 0. Non-trivial BatchNorm and alpha keep every branch visible.
    """
    if recipe.get("method") != "movinet-seeded-v1":
        raise GoldenError(f"unknown movinet weights_recipe method {recipe.get('method')!r}")
    gen = torch.Generator().manual_seed(int(recipe["seed"]))

    def uniform(shape, low, high):
        return torch.rand(shape, generator=gen) * (high - low) + low

    def normal(shape, std):
        return torch.randn(shape, generator=gen) * std

    out: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("norm.weight"):
            out[key] = uniform(shape, 0.6, 1.4)
        elif key.endswith(("norm.bias", "norm.running_mean")):
            out[key] = normal(shape, 0.2)
        elif key.endswith("norm.running_var"):
            out[key] = uniform(shape, 0.5, 2.0)
        elif key.endswith(("alpha", "pos_encoding_scale")):
            out[key] = uniform(shape, 0.3, 1.0)
        elif key.endswith("bias"):
            out[key] = normal(shape, 0.1)
        else:
            fan_in = max(1, int(torch.Size(shape).numel() // shape[0]))
            out[key] = normal(shape, fan_in**-0.5)
    return out


def _original_weights(case: GoldenCase, model) -> dict[str, torch.Tensor]:
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    return as_float32(case.original_state_dict(regenerate=lambda recipe: regenerate_weights(recipe, shapes)))


def _whole_clip(model, video: torch.Tensor, prefix: str, wanted: set[str]) -> dict[str, torch.Tensor]:
    """One fresh call; intermediate outputs are captured with forward hooks by module name."""
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    modules = dict(model.named_modules())
    for name in wanted:
        if name.startswith(prefix + "intermediate."):
            module_name = name[len(prefix + "intermediate.") :]
            if module_name in modules:
                hooks.append(
                    modules[module_name].register_forward_hook(
                        lambda _m, _i, out, key=name: captured.__setitem__(key, out.detach().clone())
                    )
                )
    try:
        logits, pooled = model.forward_pooled(video)
    finally:
        for hook in hooks:
            hook.remove()
    return {prefix + "logits": logits, prefix + "pooled_features": pooled, **captured}


def run_case(case: GoldenCase) -> dict[str, Any]:
    from vtzoo.operators.movinet.config import MovinetConfig
    from vtzoo.operators.movinet.convert import CONVERTERS
    from vtzoo.operators.movinet.model import MovinetModel

    config = MovinetConfig.from_original(case.config)
    model = MovinetModel(config).eval()
    state_dict = CONVERTERS["original"](_original_weights(case, model), config)
    load_state_dict_strict(model, state_dict, str(case.path))
    video = case.inputs()["video"].float()
    wanted = set(case.config.get("outputs") or case.outputs().keys())
    results: dict[str, Any] = {}
    with torch.no_grad():
        for call in (case.config.get("computation") or {}).get("calls", [{"frames": [0, video.shape[2]]}]):
            prefix = call.get("outputs_prefix", "")
            if "chunks" in call:
                state = model.init_state(video.shape[0], video.shape[-2], video.shape[-1])
                logits, pooled = [], []
                for start, end in call["chunks"]:
                    chunk_logits, chunk_pooled, state = model.step(video[:, :, start:end], state)
                    logits.append(chunk_logits)
                    pooled.append(chunk_pooled)
                results[prefix + "logits"] = torch.stack(logits)
                results[prefix + "pooled_features"] = torch.stack(pooled)
            elif "prefixes" in call:
                runs = [model.forward_pooled(video[:, :, start:end]) for start, end in call["prefixes"]]
                results[prefix + "logits"] = torch.stack([r[0] for r in runs])
                results[prefix + "pooled_features"] = torch.stack([r[1] for r in runs])
            else:
                start, end = call.get("frames", [0, video.shape[2]])
                results.update(_whole_clip(model, video[:, :, start:end], prefix, wanted))
    for name in wanted - set(results):
        results[name] = Skipped("not an output of the documented call schedule")
    return results


GOLDEN_RUNNERS = {"movinet": run_case}
