"""Golden parity runners for the experts: VGGish (torchvggish) and irCSN-152 (VMZ).

Both cases regenerate their weights from config.json's ``weights_recipe`` (see ``recipe.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vtzoo.operators.mdmmt.experts import audio
from vtzoo.operators.mdmmt.experts.ircsn import IrCsnConfig, IrCsnModel, convert_vmz_state_dict
from vtzoo.operators.mdmmt.experts.recipe import regenerate_weights
from vtzoo.operators.mdmmt.experts.vggish import VggishConfig, VggishModel, convert_torchvggish_state_dict
from vtzoo.registry.golden import GoldenCase, GoldenError, GoldenRun
from vtzoo.registry.weights import load_state_dict_strict


def _case_weights(case: GoldenCase) -> dict[str, torch.Tensor]:
    if "weights_recipe" in case.config:
        return regenerate_weights(case.config["weights_recipe"])
    return case.original_state_dict()


def _frontend(waveform: np.ndarray, rate: int, suffix: str, out: dict[str, Any]) -> None:
    mono = audio.to_mono(waveform)
    if waveform.ndim > 1:
        out[f"mono_{suffix}"] = torch.from_numpy(mono)
    if rate != audio.SAMPLE_RATE:
        mono = audio.resample(mono, rate, audio.SAMPLE_RATE)
        out[f"resampled_{suffix}"] = torch.from_numpy(mono)
    out[f"log_mel_{suffix}"] = torch.from_numpy(audio.log_mel_spectrogram(mono))
    out[f"examples_{suffix}"] = audio.waveform_to_examples(waveform, rate)


def run_vggish_case(case: GoldenCase) -> GoldenRun:
    kwargs = case.config.get("constructor", {}).get("kwargs", {})
    config = VggishConfig(postprocess=bool(kwargs.get("postprocess", False)))
    model = VggishModel(config).eval()
    load_state_dict_strict(model, convert_torchvggish_state_dict(_case_weights(case), config), str(case.path))
    inputs = case.inputs()
    out: dict[str, Any] = {"mel_matrix": torch.from_numpy(audio.mel_matrix())}
    # waveform inputs are named waveform_16k / waveform_<rate>hz_<channels>ch
    for key, wave in inputs.items():
        if not key.startswith("waveform_") or key.endswith("_int16"):
            continue
        if key == "waveform_16k":
            _frontend(wave.numpy(), 16000, "16k", out)
        else:
            rate = int(key.split("_")[1].removesuffix("hz"))
            _frontend(wave.numpy(), rate, "mc", out)
    with torch.no_grad():
        for suffix in ("16k", "mc"):
            examples = inputs.get(f"examples_{suffix}")
            if examples is None:
                continue
            conv = model.conv_features(examples)
            pre = model.embed_pre_activation(conv)
            out[f"features_{suffix}"] = conv
            out[f"embedding_pre_relu_{suffix}"] = pre
            out[f"embeddings_{suffix}"] = model(examples)
    return GoldenRun(out, {})


def run_ircsn_case(case: GoldenCase) -> GoldenRun:
    cfg = case.config
    blocks = cfg.get("full_config", {}).get("blocks", [3, 8, 36, 3])
    num_classes = int(cfg.get("constructor", {}).get("num_classes", 400))
    config = IrCsnConfig(layers=list(blocks), num_classes=num_classes)
    model = IrCsnModel(config).eval()
    load_state_dict_strict(model, convert_vmz_state_dict(_case_weights(case), config), str(case.path))
    inputs = case.inputs()
    video = inputs.get("video")
    if video is None:
        raise GoldenError(f"{case.path}: input 'video' is missing")
    out: dict[str, Any] = {}
    if "frames_uint8" in inputs:  # normalisation check: uint8 (B, T, H, W, 3) -> (B, 3, T, H, W)
        out["_video_from_frames"] = normalize_clip(inputs["frames_uint8"])
    with torch.no_grad():
        stages = model.stages(video)
        for name, value in stages.items():
            out[f"{name}_out"] = value
        out["features"] = torch.flatten(model.avgpool(stages["layer4"]), 1)
        out["logits"] = model.fc(out["features"])
    if "_video_from_frames" in out and not torch.equal(out.pop("_video_from_frames"), video):
        raise GoldenError(f"{case.path}: vtzoo's clip normalisation differs from the case's 'video' input")
    return GoldenRun(out, {})


def normalize_clip(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) RGB -> float32 (B, 3, T, H, W), /255 then Kinetics mean/std."""
    from vtzoo.operators.mdmmt.experts.ircsn import MEAN, STD

    x = frames_uint8.float() / 255.0
    x = x.permute(0, 4, 1, 2, 3)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


GOLDEN_RUNNERS = {"vggish": run_vggish_case, "ircsn152": run_ircsn_case}
