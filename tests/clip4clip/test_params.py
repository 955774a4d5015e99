"""Full-size configurations are only constructed (on the meta device) and their size checked.

Expected counts: OpenAI CLIP ViT-B/32 151,277,313 and ViT-B/16 149,620,737 parameters, and the
original CLIP4Clip (ArrowLuo/CLIP4Clip @ 508ffa3) built on those CLIPs with its cross-base config
and cross_num_hidden_layers = 4, counted from the original code's modules.
"""

from __future__ import annotations

import pytest
import torch

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
        model = CLIP4ClipModel(CLIP4ClipConfig(sim_header=header, linear_patch=linear_patch, vision_patch_size=patch))
    assert sum(p.numel() for p in model.parameters()) == ORIGINAL_COUNTS[(patch, header, linear_patch)]


def test_config_refuses_impossible_widths():
    with pytest.raises(ValueError, match="embed_dim == transformer_width == cross_hidden_size"):
        CLIP4ClipConfig(sim_header="seqTransf", cross_hidden_size=256)
    with pytest.raises(ValueError, match="sim_header"):
        CLIP4ClipConfig(sim_header="meanp")
    with pytest.raises(ValueError, match="max_words"):
        CLIP4ClipConfig(max_words=78)
