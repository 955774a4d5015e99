"""CLIP4Clip in bf16 (bf16 CLIP weights, float32 heads) against float32 on a tiny config."""

import pytest
import torch

import vtzoo

from ..conftest import bf16_against_fp32

TINY_CLIP = dict(
    embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=16, vision_heads=2,
    context_length=16, vocab_size=518, transformer_width=64, transformer_heads=2, transformer_layers=1,
)
TINY = dict(clip=TINY_CLIP, cross_hidden_size=64, cross_num_attention_heads=2, cross_num_hidden_layers=1, max_words=8,
            max_frames=4)


@pytest.mark.parametrize("header", ["meanP", "seqTransf"])
def test_bf16_video_embeddings_match_fp32(header):
    torch.manual_seed(0)
    op = vtzoo.create("clip4clip", weights="random", precision="fp32", sim_header=header, **TINY)
    assert bf16_against_fp32(op, op.example_video_input(3)) > 0.999


def test_padded_frames_are_encoded_once_with_the_same_result():
    torch.manual_seed(0)
    op = vtzoo.create("clip4clip", weights="random", precision="fp32", **TINY)
    video = op.example_video_input(2)
    video[0, 1:] = 0  # a 1-frame video zero-padded to 4, as stack_clips pads it
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    calls = []
    op.model.clip.vision_model.embeddings.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    with torch.inference_mode():
        skipped = op.model.encode_frames(video, mask)
        every = op.model.encode_frames(video)
    assert calls == [6, 8]  # 5 real frames + the one padded frame they share; then all 8
    torch.testing.assert_close(skipped, every, atol=1e-5, rtol=0)


def test_openvino_backend_runs_the_same_image_tower_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VTZOO_OPENVINO_CACHE", str(tmp_path))
    torch.manual_seed(0)
    op = vtzoo.create("clip4clip", weights="random", precision="fp32", **TINY)
    video = op.example_video_input(2)
    for _ in range(2):  # converted once, then read from the cache
        torch.manual_seed(0)
        fast = vtzoo.create("clip4clip", weights="random", precision="fp32", backend="openvino", **TINY)
        assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".xml"]
    torch.testing.assert_close(fast.embed_video(video).pooled, op.embed_video(video).pooled, atol=1e-5, rtol=0)
    low = vtzoo.create("clip4clip", weights="random", precision="bf16", backend="openvino", **TINY)
    assert low.precision == "bf16" and len(low.embed_video(video)) == 2
