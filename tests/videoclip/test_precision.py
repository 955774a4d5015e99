"""VideoCLIP's towers in bf16 (bf16 Linear weights, float32 pooling) against float32."""

import torch

import vtzoo

from ..conftest import bf16_against_fp32

TINY = dict(vocab_size=1000, hidden_size=64, num_attention_heads=4, intermediate_size=128,
            text_num_hidden_layers=2, video_num_hidden_layers=2, max_len=42)  # fmt: skip


def test_bf16_video_embeddings_match_fp32():
    torch.manual_seed(0)
    op = vtzoo.create("videoclip", weights="random", precision="fp32", with_s3d=False, **TINY)
    assert bf16_against_fp32(op, op.example_video_input(2)) > 0.999
