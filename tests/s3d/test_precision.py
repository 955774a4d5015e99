"""S3D in bf16 + channels_last_3d against float32; the OpenVINO cache key."""

import torch

import vtzoo

from ..conftest import bf16_against_fp32

SMALL = dict(resize=32, crop=32, window_frames=8)


def test_bf16_window_features_match_fp32():
    torch.manual_seed(0)
    op = vtzoo.create("s3d", weights="random", precision="fp32", **SMALL)
    assert bf16_against_fp32(op, op.example_video_input(2, 16), field="tokens") > 0.999


def test_openvino_cache_key_follows_weights_and_shapes():
    from vtzoo.runtime.openvino import cache_key

    torch.manual_seed(0)
    layer, example = torch.nn.Linear(4, 4), (torch.zeros(2, 4),)
    key = cache_key("tower", layer, example, "v")
    assert key == cache_key("tower", layer, (torch.ones(2, 4),), "v")  # values of the example do not matter
    assert key != cache_key("tower", layer, (torch.zeros(2, 5),), "v")
    assert key != cache_key("tower", layer, example, "w")
    with torch.no_grad():
        layer.weight[0, 0] += 1
    assert key != cache_key("tower", layer, example, "v")
