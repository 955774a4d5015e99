"""Frozen in Time in bf16 (bf16 tower weights, float32 projections) against float32."""

import torch

import vtzoo

from ..conftest import bf16_against_fp32


def test_bf16_video_embeddings_match_fp32(tiny_overrides):
    torch.manual_seed(0)
    op = vtzoo.create("frozen_in_time", weights="random", precision="fp32", **tiny_overrides)
    assert bf16_against_fp32(op, op.example_video_input(2)) > 0.999
