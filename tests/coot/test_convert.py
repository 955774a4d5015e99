"""Both original checkpoint formats load through the registry and give the fixture's outputs."""

from __future__ import annotations

import pytest
import torch

import vtzoo
from vtzoo.operators.coot.convert import (
    convert_original_state_dict,
    flatten_original_checkpoint,
    to_legacy_list,
)
from vtzoo.registry.weights import WeightsError

from .conftest import CREATE, TINY, fixture_videos

NETS = ("net_video_local", "net_video_global", "net_text_local", "net_text_global")


def _video_embedding(op, case):
    import json

    layout = json.loads((case["path"] / "config.json").read_text())["batch_layout"]
    return op.embed_video(fixture_videos(case["inputs"], layout)).tokens


def _create(path):
    return vtzoo.create("coot", "youcook2-s3d", weights=str(path), video_feature_dim=48, **CREATE)


def test_2020_list_format(tmp_path, yc2_case):
    legacy = to_legacy_list(yc2_case["state"])
    # the 2020 names: input_norm., input_fc.0., pooler.genpool_*
    assert "input_norm.gain" in legacy[0] and "input_fc.0.weight" in legacy[0]
    assert "pooler.genpool_w1_head" in legacy[2] and not any("pools.0" in k for k in legacy[2])
    path = tmp_path / "yc2_100m_coot.pth"
    torch.save(legacy, path)
    clips = _video_embedding(_create(path), yc2_case)
    expected = yc2_case["outputs"]["clip_emb_reshape"]
    assert torch.allclose(clips, expected, atol=1e-5)


def test_per_network_dict_format_with_module_prefix(tmp_path, yc2_case):
    nested = {n: {f"module.{k[len(n) + 1:]}": v for k, v in yc2_case["state"].items() if k.startswith(n + ".")}
              for n in NETS}  # fmt: skip
    path = tmp_path / "model_10.pth"
    torch.save(nested, path)
    clips = _video_embedding(_create(path), yc2_case)
    assert torch.allclose(clips, yc2_case["outputs"]["clip_emb_reshape"], atol=1e-5)


def test_flat_safetensors_loads_as_vtzoo_keys(yc2_case):
    assert torch.allclose(_video_embedding(_create(yc2_case["weights"]), yc2_case),
                          yc2_case["outputs"]["clip_emb_reshape"], atol=1e-5)  # fmt: skip


def test_save_pretrained_round_trip(tmp_path, yc2_case):
    op = _create(yc2_case["weights"])
    op.model.save_pretrained(tmp_path / "saved")
    again = vtzoo.create("coot", "youcook2-s3d", weights=str(tmp_path / "saved"), precision="fp32")
    assert again.config.video_feature_dim == 48
    assert torch.equal(_video_embedding(again, yc2_case), _video_embedding(op, yc2_case))


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"epoch": 1, "model": {}, "model_cfg": {}, "opt": {}}, "MART captioning checkpoint"),
        ([{"a": torch.zeros(1)}] * 3, "list of 4 state dicts"),
        ({"encoder": {"w": torch.zeros(1)}}, "not a COOT checkpoint"),
        ("just a string", "not a COOT checkpoint"),
    ],
)
def test_wrong_formats_are_refused(payload, message):
    with pytest.raises(WeightsError, match=message):
        flatten_original_checkpoint(payload, "ckpt.pth")


def test_foreign_state_dict_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="outside the four networks"):
        convert_original_state_dict({"visual.conv1.weight": torch.zeros(1)})
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError):
        _create(path)


def test_wrong_architecture_lists_the_mismatch(tmp_path, yc2_case):
    path = tmp_path / "yc2.pth"
    torch.save(to_legacy_list(yc2_case["state"]), path)
    with pytest.raises(WeightsError, match="shape mismatch"):
        vtzoo.create("coot", "youcook2-s3d", weights=str(path), hidden_dim=32, num_heads=2, video_feature_dim=512,
                     text_feature_dim=40)  # fmt: skip


def test_model_from_pretrained_reads_the_2020_list(tmp_path, yc2_case):
    from vtzoo.operators.coot import CootModel

    path = tmp_path / "yc2.pth"
    torch.save(to_legacy_list(yc2_case["state"]), path)
    model = CootModel.from_pretrained(str(path), video_feature_dim=48, **TINY)
    for key, value in yc2_case["state"].items():
        assert torch.equal(model.state_dict()[key], value), key
