"""The clip features a VideoBERT / CBT config names: object-centred thumbnails, the extractor
factory, and features the model cannot read."""

from __future__ import annotations

import pytest
import torch

import vtzoo
from vtzoo.backbones.clip_features import clip_extractor
from vtzoo.backbones.s3d.clips import S3DClips
from vtzoo.backbones.thumbnails import ThumbnailClips, centred_thumbnails
from vtzoo.errors import ConfigError


def _frames_with_square(top: int, left: int, side: int = 6, size: int = 32) -> torch.Tensor:
    """(1, 3, size, size): a dark grey frame with a red square whose top-left corner is given."""
    frame = torch.full((1, 3, size, size), 0.1)
    frame[0, :, top : top + side, left : left + side] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    return frame


def test_centred_thumbnails_see_the_same_shape_anywhere_and_say_where_it_is():
    here, there = _frames_with_square(2, 4), _frames_with_square(20, 18)
    a, b = centred_thumbnails(here, 8, 0.3, 4.0), centred_thumbnails(there, 8, 0.3, 4.0)
    assert a.shape == (1, 3 * 8 * 8 + 2)
    assert torch.allclose(a[:, :-2], b[:, :-2])  # the object, centred: equal wherever it was
    # position: the square's centre (left + 3, top + 3) / 32 - 0.5 (0 in the middle), times the weight
    assert torch.allclose(a[0, -2:], torch.tensor([(4 + 3) / 32 - 0.5, (2 + 3) / 32 - 0.5]) * 4.0)
    assert torch.allclose(b[0, -2:], torch.tensor([(18 + 3) / 32 - 0.5, (20 + 3) / 32 - 0.5]) * 4.0)
    # the border colour is taken away: an empty frame is all zeros, centred
    empty = centred_thumbnails(torch.full((1, 3, 32, 32), 0.1), 8, 0.3, 4.0)
    assert float(empty.abs().max()) < 1e-6


def test_a_config_names_its_extractor():
    assert isinstance(clip_extractor({}), S3DClips)
    paper = clip_extractor({}, clip_size=112)
    assert (paper.windowing.fps, paper.windowing.window_frames, paper.windowing.output) == (20.0, 30, "mixed_5c")
    thumbs = clip_extractor({"extractor": "thumbnails", "fps": 4.0, "size": 8, "centre": True, "window_frames": 30})
    assert isinstance(thumbs, ThumbnailClips) and thumbs.dim == 194 and "centred" in thumbs.extractor_id
    s3d = clip_extractor({"extractor": "s3d", "fps": 8.0, "window_frames": 8, "output": "video_embedding", "seed": 3})
    assert s3d.dim == 512 and s3d.extractor_id.startswith("s3d[random:3]/video_embedding/8fps/8f")
    with pytest.raises(ConfigError, match="'pixels' is not one of s3d, thumbnails"):
        clip_extractor({"extractor": "pixels"})


@pytest.mark.parametrize("name", ["videobert", "cbt"])
def test_an_extractor_whose_features_the_model_cannot_read_is_refused(name, bert_vocab):
    from vtzoo.registry.operators import get_operator_class

    config = {**get_operator_class(name).tiny_config(None), "clip_features": {"extractor": "thumbnails", "size": 8}}
    op = vtzoo.create(name, weights="random", precision="fp32", tokenizer=bert_vocab, **config)
    with pytest.raises(ConfigError, match=r"are 192-d, but the model reads 1024-d features"):
        op.embed_video(["never-decoded.mp4"])
