"""Converters: the reference port's state dicts and the official TF variable names."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.operators.movinet import MovinetConfig, MovinetModel
from vtzoo.operators.movinet.convert import convert_original_state_dict, convert_tf_variables
from vtzoo.operators.movinet.golden import regenerate_weights
from vtzoo.registry.weights import WeightsError


def _model(model_id: str, causal: bool, positional: bool = False) -> MovinetModel:
    config = MovinetConfig(model_id=model_id, causal=causal, conv_type="2plus1d" if causal else "3d",
                           use_positional_encoding=positional)
    with torch.device("meta"):  # every tensor is replaced below
        model = MovinetModel(config)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(regenerate_weights({"method": "movinet-seeded-v1", "seed": 5}, shapes), assign=True)
    return model.eval()


# TF-Hub variable names as the port's conversion notebook (weights/weight_load.ipynb) reads them.
_BASE_SCOPES = {"expand": "expansion", "deep": "feature", "project": "projection",
                "se.fc1": "se/se_reduce", "se.fc2": "se/se_expand"}
_STREAM_CONVS = {"expand": "expansion/conv2d/conv2d", "deep": "feature/conv2d/depthwise_conv2d",
                 "project": "projection/conv2d/conv2d_3", "se.fc1": "se/se_reduce/conv2d/conv2d_1",
                 "se.fc2": "se/se_expand/conv2d/conv2d_2", "res": "skip/skip_project/conv2d/conv2d_4",
                 "conv7": "head/project/conv2d/conv2d", "conv1": "stem/stem/conv2d/conv2d",
                 "classifier.0": "classifier_head/head/conv2d/conv2d",
                 "classifier.3": "classifier_head/classifier/conv2d/conv2d_1"}
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _tf_name(key: str, stream: bool) -> str | None:
    if key.endswith("num_batches_tracked"):
        return None
    m = re.match(r"blocks\.b(\d+)_l(\d+)\.(.*)$", key)
    if m:
        prefix, rest = f"b{m[1]}/l{m[2]}/bneck/", m[3]
    else:
        prefix, rest = "", key
    if rest == "alpha":
        return prefix + "scale:0"
    if rest == "se.pos_encoding_scale":
        return prefix + "se/pos_encoding/rezero/scale:0"
    rest = re.sub(r"^res\.\d", "res", rest)
    layer, unit, kind, param = re.match(r"(.*)\.(conv_[12])\.(conv3d|conv2d|norm)\.(\w+)$", rest).groups()
    if not stream:
        scope = {"conv1": "stem/stem", "conv7": "head/project", "classifier.0": "classifier_head/head",
                 "classifier.3": "classifier_head/classifier", "res": "skip/skip_project"}.get(layer) or _BASE_SCOPES[layer]
        leaf = f"bn/{_BN[param]}" if kind == "norm" else f"conv3d/{'kernel' if param == 'weight' else 'bias'}"
        return f"{prefix}{scope}/{leaf}:0"
    if kind == "norm":
        scope = _STREAM_CONVS[layer].split("/conv2d")[0]
        return f"{prefix}{scope}/{'bn_temporal' if unit == 'conv_2' else 'bn'}/{_BN[param]}:0"
    if layer == "deep":
        conv = "feature/conv2d_temporal/depthwise_conv2d_1" if unit == "conv_2" else _STREAM_CONVS["deep"]
        return f"{prefix}{conv}/depthwise_kernel:0"
    return f"{prefix}{_STREAM_CONVS[layer]}/{'kernel' if param == 'weight' else 'bias'}:0"


def _to_tf(key: str, value: torch.Tensor) -> np.ndarray:
    if value.dim() == 5:
        return value.permute(2, 3, 4, 1, 0).numpy()
    if value.dim() == 4:
        perm = (2, 3, 0, 1) if ".deep." in key else (2, 3, 1, 0)
        return value.permute(*perm).numpy()
    return value.numpy()


def _tf_variables(model: MovinetModel) -> dict[str, np.ndarray]:
    stream = model.config.conv_type == "2plus1d"
    out = {}
    for key, value in model.state_dict().items():
        name = _tf_name(key, stream)
        if name is not None:
            out[name] = _to_tf(key, value)
    return out


@pytest.mark.parametrize("model_id,causal,positional", [("a0", False, False), ("a0", True, False),
                                                        ("a3", True, True)])
def test_tf_variables_convert_exactly(model_id, causal, positional):
    model = _model(model_id, causal, positional)
    converted = convert_tf_variables(_tf_variables(model), model.config)
    reference = model.state_dict()
    assert set(converted) == set(reference)
    for key, value in reference.items():
        assert torch.equal(converted[key].to(value.dtype), value), key


def test_tf_npz_loads_through_registry(tmp_path):
    model = _model("a0", True)
    path = tmp_path / "movinet_a0_stream.npz"
    np.savez(path, **_tf_variables(model))
    op = vtzoo.create("movinet/a0-stream", weights=str(path), precision="fp32")
    video = torch.rand(1, 3, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(op.embed_video(video).extras["logits"], model(video), atol=1e-5, rtol=0)


def test_unknown_tf_variable_is_named():
    model = _model("a0", False)
    variables = _tf_variables(model)
    variables["b0/l0/bneck/mystery/kernel:0"] = np.zeros(1)
    with pytest.raises(WeightsError, match="mystery"):
        convert_tf_variables(variables, model.config)


def test_original_converter_refuses_positional_encoding_models():
    config = MovinetConfig(model_id="a3", causal=True, conv_type="2plus1d", use_positional_encoding=True)
    with pytest.raises(WeightsError, match="TF"):
        convert_original_state_dict({}, config)


def test_missing_original_keys_are_listed(tmp_path):
    from safetensors.torch import save_file

    model = _model("a0", False)
    state = {k: v for k, v in model.state_dict().items() if "classifier.3" not in k}
    path = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(WeightsError, match="classifier.3.conv_1.conv3d.weight"):
        vtzoo.create("movinet/a0-base", weights=str(path), precision="fp32")
