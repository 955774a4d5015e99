"""The precision and runtime options at create: resolution, fallbacks and bad values."""

import sys

import pytest
import torch

import vtzoo
from vtzoo import precision as P
from vtzoo.errors import ConfigError

TINY_CLIP4CLIP = dict(clip=dict(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                                vision_heads=1, context_length=16, vocab_size=518, transformer_width=32,
                                transformer_heads=1, transformer_layers=1),
                      cross_hidden_size=32, max_words=8, max_frames=2)  # fmt: skip


def test_auto_falls_back_to_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    op = vtzoo.create("clip4clip", weights="random", **TINY_CLIP4CLIP)
    assert op.precision == "fp32"
    assert {p.dtype for p in op.model.parameters()} == {torch.float32}


def test_auto_is_bf16_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    op = vtzoo.create("clip4clip", weights="random", **TINY_CLIP4CLIP)
    assert op.precision == "bf16"


def test_unknown_precision_is_a_config_error_before_the_build():
    with pytest.raises(ConfigError, match=r"precision 'bf61' is not one of fp32, bf16, fp16, auto.*Did you mean: bf16"):
        vtzoo.create("clip4clip", weights="random", precision="bf61", **TINY_CLIP4CLIP)


def test_bf16_on_a_device_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError, match=r"precision 'bf16' is not supported on device cuda"):
        P.resolve_precision("bf16", "cuda")


def test_openvino_without_the_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'vtzoo\[openvino\]'"):
        vtzoo.create("clip4clip", weights="random", backend="openvino", **TINY_CLIP4CLIP)


def test_runtime_options_name_what_they_apply_to():
    with pytest.raises(ConfigError, match=r"backend='openvino' is not available for operator 'vggish'.*clip4clip"):
        vtzoo.create("vggish", weights="random", backend="openvino")
    with pytest.raises(ConfigError, match=r"backend 'onnx' is not one of torch, openvino"):
        vtzoo.create("clip4clip", weights="random", backend="onnx", **TINY_CLIP4CLIP)
