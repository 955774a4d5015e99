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


def _coloured_square(top: int, left: int, colour: tuple[float, float, float], side: int = 6, size: int = 32) -> torch.Tensor:
    frame = torch.full((1, 3, size, size), 0.1)
    frame[0, :, top : top + side, left : left + side] = torch.tensor(colour)[:, None, None]
    return frame


def test_silhouettes_keep_the_shape_apart_from_its_colour():
    red, blue = _coloured_square(4, 4, (0.9, 0.1, 0.1)), _coloured_square(20, 16, (0.1, 0.1, 0.9))
    a = centred_thumbnails(red, 8, 0.3, 1.0, colour_weight=2.0)
    b = centred_thumbnails(blue, 8, 0.3, 1.0, colour_weight=2.0)
    assert a.shape == (1, 8 * 8 + 3 + 2)
    assert torch.allclose(a[:, :64], b[:, :64])  # the same square: the same silhouette
    # a 6-px square in a 32-px frame shrunk 4x covers 1.5 x 1.5 thumbnail pixels: 2.25 in all
    assert float(a[0, :64].sum()) == pytest.approx(36 / 16)
    # the mean colour of the foreground (the frame minus its border colour 0.1), times the weight
    assert torch.allclose(a[0, 64:67], torch.tensor([0.8, 0.0, 0.0]) * 2.0)
    assert torch.allclose(b[0, 64:67], torch.tensor([0.0, 0.0, 0.8]) * 2.0)


def test_an_object_window_shows_the_object_at_a_finer_scale():
    frame = _coloured_square(4, 4, (0.9, 0.1, 0.1))
    whole = centred_thumbnails(frame, 8, 0.3, 1.0, colour_weight=1.0)
    half = centred_thumbnails(frame, 8, 0.3, 1.0, object_window=0.5, colour_weight=1.0)
    # half the frame around the object, shrunk to the same 8 px: the square covers 4x the pixels
    assert float(half[0, :64].sum()) == pytest.approx(4 * float(whole[0, :64].sum()))
    assert torch.allclose(half[0, -2:], whole[0, -2:])  # where it is does not depend on the window


def test_motion_clips_say_how_far_the_object_moves_in_each_window():
    # a square that moves 2 px right per frame, 12 frames
    frames = torch.cat([_coloured_square(12, 2 + 2 * t, (0.9, 0.1, 0.1)) for t in range(12)])
    extractor = ThumbnailClips(fps=8.0, size=8, centre=True, position_weight=10.0, silhouette=True, clip_frames=8,
                               clip_stride=4)
    assert extractor.dim == 2 * (64 + 3) + 2 and "clips8s4" in extractor.extractor_id
    from vtzoo.backbones.thumbnails import motion_clips

    per_frame = centred_thumbnails(frames, 8, 0.3, 10.0, colour_weight=1.0)
    clips, first = motion_clips(per_frame, 8, 4)
    assert first == [0, 4] and clips.shape == (2, extractor.dim)
    # 7 frames of 2 px in a 32 px frame: 14 / 32 of the width to the right, times the weight; no vertical motion
    assert torch.allclose(clips[:, -2:], torch.tensor([[14 / 32 * 10.0, 0.0]] * 2), atol=1e-5)
    assert torch.allclose(clips[:, 67:134], torch.zeros(2, 67), atol=1e-6)  # the silhouette does not change
    assert torch.allclose(clips[0, :67], per_frame[0, :67])  # the same square in every frame: its mean is it
    # windows: side by side, the last one ending at the last frame; a short video is one window
    assert motion_clips(per_frame[:10], 8, 4)[1] == [0, 2]
    assert motion_clips(per_frame[:3], 8, 4)[1] == [0]


def test_clip_options_need_centred_thumbnails():
    with pytest.raises(ConfigError, match="need centre: true"):
        ThumbnailClips(clip_frames=8)
    with pytest.raises(ConfigError, match="clip_frames must be >= 1"):
        ThumbnailClips(centre=True, clip_frames=0)


def test_cached_clip_features_are_timed_by_their_windows(speech_dataset):
    from vtzoo.training.features import Extractor, FeatureSpec

    spec = FeatureSpec(extractor="thumbnails", fps=4.0, size=4, centre=True, silhouette=True, clip_frames=4, clip_stride=2)
    video = sorted((speech_dataset / "videos").glob("*.mp4"))[0]  # 8 frames at 4 fps: windows at frames 0, 2, 4
    stored = Extractor(spec)(type("Item", (), {"path": video})())
    assert stored["features"].shape == (3, spec.dim) and spec.dim == 2 * (16 + 3) + 2
    assert stored["times"].tolist() == [[0.0, 1.0], [0.5, 1.5], [1.0, 2.0]]  # 4 frames at 4 fps: 1 s each
    # new options at their defaults leave the fingerprints (the caches) of earlier extractions as they were
    assert FeatureSpec(extractor="thumbnails", size=4).fingerprint() == FeatureSpec(
        extractor="thumbnails", size=4, clip_frames=1, silhouette=False).fingerprint()
    assert spec.fingerprint() != FeatureSpec(extractor="thumbnails", fps=4.0, size=4, centre=True).fingerprint()
