"""MoViNet in bf16 + channels_last_3d against float32: whole clips and the stream state."""

import copy

import torch

import vtzoo

from ..conftest import bf16_against_fp32


def test_bf16_clip_features_match_fp32():
    torch.manual_seed(0)
    op = vtzoo.create("movinet/a0-base", weights="random", precision="fp32")
    assert bf16_against_fp32(op, op.example_video_input(1, 8)) > 0.999


def test_bf16_stream_steps_match_fp32():
    torch.manual_seed(0)
    op = vtzoo.create("movinet/a0-stream", weights="random", precision="fp32")
    low = copy.deepcopy(op).configure("bf16")
    clip = op.example_video_input(1, 4)
    outputs = []
    for model in (op.model, low.model):
        state = model.init_state(1, *clip.shape[-2:])
        with torch.inference_mode():
            for t in range(clip.shape[2]):
                _, pooled, state = model.step(clip[:, :, t : t + 1], state)
        outputs.append(pooled)
    assert outputs[1].dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(*outputs).min()) > 0.999
