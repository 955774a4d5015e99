"""Full-size configurations are only constructed (on the meta device) and their size checked.

Expected counts: OpenAI CLIP ViT-B/32 151,277,313 and ViT-B/16 149,620,737 parameters, and the
original CLIP4Clip (ArrowLuo/CLIP4Clip @ 508ffa3) built on those CLIPs with its cross-base config
and cross_num_hidden_layers = 4, counted from the original code's modules.
"""

from __future__ import annotations

import pytest
import torch

from vtzoo.backbones.clip import OPENAI_RELEASES, CLIPSizes, CLIPTowers
from vtzoo.operators.clip4clip import CLIP4ClipConfig, CLIP4ClipModel

ORIGINAL_COUNTS = {
    (32, "meanP", "2d"): 151_277_313,  # = OpenAI CLIP ViT-B/32: meanP has no parameters
    (32, "meanP", "3d"): 158_355_201,
    (32, "seqLSTM", "2d"): 153_417_985,
    (32, "seqTransf", "2d"): 163_926_273,
    (32, "tightTransf", "2d"): 164_190_466,
    (16, "meanP", "2d"): 149_620_737,  # = OpenAI CLIP ViT-B/16
    (16, "seqTransf", "3d"): 164_039_169,
}


@pytest.mark.parametrize("patch,header,linear_patch", sorted(ORIGINAL_COUNTS))
def test_full_size_parameter_count(patch, header, linear_patch):
    with torch.device("meta"):
        clip = CLIPSizes.of_release(f"ViT-B/{patch}")
        model = CLIP4ClipModel(CLIP4ClipConfig(clip=clip, sim_header=header, linear_patch=linear_patch))
    assert sum(p.numel() for p in model.parameters()) == ORIGINAL_COUNTS[(patch, header, linear_patch)]


def test_config_refuses_impossible_widths():
    with pytest.raises(ValueError, match="clip.embed_dim == clip.transformer_width == cross_hidden_size"):
        CLIP4ClipConfig(sim_header="seqTransf", cross_hidden_size=256)
    with pytest.raises(ValueError, match="sim_header"):
        CLIP4ClipConfig(sim_header="meanp")
    with pytest.raises(ValueError, match="max_words"):
        CLIP4ClipConfig(max_words=78)
    with pytest.raises(ValueError, match="vision_heads=5 must be a positive divisor of vision_width=768"):
        CLIP4ClipConfig(clip={"vision_heads": 5})


def test_openai_releases_are_the_sizes_open_clip_ships():
    """The release table against open_clip's model configs (an independent record of OpenAI's sizes)."""
    import json
    from pathlib import Path

    open_clip = pytest.importorskip("open_clip")
    for name, sizes in OPENAI_RELEASES.items():
        other = json.loads((Path(open_clip.__file__).parent / "model_configs" / f"{name.replace('/', '-')}.json").read_text())
        vision, text = other["vision_cfg"], other["text_cfg"]
        assert (sizes.embed_dim, sizes.image_resolution, sizes.vision_layers, sizes.vision_width, sizes.vision_patch_size) == (
            other["embed_dim"], vision["image_size"], vision["layers"], vision["width"], vision["patch_size"])
        assert (sizes.context_length, sizes.vocab_size, sizes.transformer_width, sizes.transformer_heads,
                sizes.transformer_layers) == (text["context_length"], text["vocab_size"], text["width"], text["heads"],
                                              text["layers"])
        assert sizes.vision_heads == vision["width"] // 64  # OpenAI's rule (open_clip's head_width 64)


def test_vit_l14_parameter_count():
    # OpenAI's ViT-L/14 as open_clip's own implementation counts it (open_clip.model.CLIP of ViT-L-14.json)
    with torch.device("meta"):
        towers = CLIPTowers(CLIPSizes.of_release("ViT-L/14"))
    assert sum(p.numel() for p in towers.parameters()) == 427_616_513


def test_from_original_reads_the_original_arguments():
    """The original's argparse names, flat: the CLIP sizes come from --pretrained_clip_name."""
    args = {"sim_header": "seqTransf", "loose_type": True, "max_words": 32, "max_frames": 12, "linear_patch": "2d",
            "cross_num_hidden_layers": 4, "pretrained_clip_name": "ViT-B/16"}
    config = CLIP4ClipConfig.from_original(args)
    assert config == CLIP4ClipConfig(clip=CLIPSizes(vision_patch_size=16), sim_header="seqTransf")
    with pytest.raises(ValueError, match="tightTransf needs loose_type=False"):
        CLIP4ClipConfig.from_original({**args, "sim_header": "tightTransf"})
    with pytest.raises(ValueError, match="unknown OpenAI CLIP release 'RN50'"):
        CLIP4ClipConfig.from_original({**args, "pretrained_clip_name": "RN50"})
