"""Golden parity runner for VGGish (torchvggish): the front end and the network.

The case regenerates its weights from config.json's ``weights_recipe`` (``vtzoo.registry.recipes``),
with any tensors of ``original_state_dict.safetensors`` beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vtzoo.operators.mdmmt.experts.vggish import audio
from vtzoo.operators.mdmmt.experts.vggish.convert import CONVERTERS
from vtzoo.operators.mdmmt.experts.vggish.model import VggishConfig, VggishModel
from vtzoo.registry.golden import GoldenCase, GoldenRun
from vtzoo.registry.weights import load_state_dict_strict


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
    config = VggishConfig.from_original(case.config.get("constructor", {}).get("kwargs", {}))
    model = VggishModel(config).eval()
    load_state_dict_strict(model, CONVERTERS["original"](case.original_state_dict(), config), str(case.path))
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


GOLDEN_RUNNERS = {"vggish": run_vggish_case}
