"""DRL in bf16 (bf16 CLIP weights; temporal module and interaction float32) against float32."""

import torch

import vtzoo

from ..conftest import bf16_against_fp32

TINY = dict(
    clip=dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=128, vision_patch_size=16,
              context_length=77, vocab_size=49408, transformer_width=64, transformer_layers=1),
    max_frames=6,
)


def test_bf16_frame_features_match_fp32():
    torch.manual_seed(0)
    op = vtzoo.create("drl", weights="random", precision="fp32", **TINY)
    assert bf16_against_fp32(op, op.example_video_input(2), field="tokens") > 0.999
