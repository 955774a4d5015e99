"""Decoded-frame input, and a clear VideoDecodeError for every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtzoo import VtzooError
from vtzoo.video import VideoDecodeError, load_video, probe_video


def _numbered_frames(count: int = 10, height: int = 6, width: int = 5) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[..., 0] = np.arange(count)[:, None, None]  # red = frame number
    return frames


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f,  # numpy uint8 (T, H, W, C)
        lambda f: f.astype(np.float32) / 255,  # numpy float in [0, 1]
        lambda f: torch.from_numpy(f).permute(0, 3, 1, 2),  # torch uint8 (T, C, H, W)
        lambda f: torch.from_numpy(f),  # torch uint8 (T, H, W, C)
        lambda f: torch.from_numpy(f).permute(0, 3, 1, 2).float() / 255,  # torch float (T, C, H, W)
    ],
    ids=["np-uint8-thwc", "np-float-thwc", "torch-uint8-tchw", "torch-uint8-thwc", "torch-float-tchw"],
)
def test_decoded_frames_are_sampled_like_videos(make):
    clip = load_video(make(_numbered_frames()), num_frames=4)
    assert clip.backend == "array" and clip.source == "<array>"
    assert clip.indices == [0, 3, 6, 9]
    assert clip.frames.shape == (4, 3, 6, 5)
    assert (clip.frames[:, 0, 0, 0] * 255).round().tolist() == [0, 3, 6, 9]


def test_decoded_frames_with_a_frame_rate():
    frames = _numbered_frames(20)
    clip = load_video(frames, fps=2.0, source_fps=10.0, start=0.5)  # t = .5, 1.0, 1.5 -> 5, 10, 15
    assert clip.indices == [5, 10, 15] and clip.fps == 10.0 and clip.duration == 2.0
    with pytest.raises(ValueError, match="needs source_fps"):
        load_video(frames, fps=2.0)
    grey = load_video(frames[..., :1], num_frames=2)  # one channel is repeated to RGB
    assert grey.frames.shape == (2, 3, 6, 5) and torch.equal(grey.frames[:, 0], grey.frames[:, 2])
    assert probe_video(frames, source_fps=10.0).num_frames == 20


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((6, 5, 3), np.uint8), r"got shape \(6, 5, 3\); expected decoded frames as numpy \(T, H, W, C\)"),
        (torch.zeros(2, 4, 6, 5), r"no channel axis of size 1 or 3"),
        (np.zeros((0, 6, 5, 3), np.uint8), "zero frames"),
        (np.zeros((2, 6, 5, 3), np.int32), "dtype torch.int32"),
        (np.full((2, 6, 5, 3), 255.0, np.float32), r"float frames must hold values in \[0, 1\]"),
    ],
)
def test_wrong_frame_arrays(bad, message):
    with pytest.raises(VideoDecodeError, match=message) as caught:
        load_video(bad, num_frames=2)
    assert caught.value.source == "<array>" and "<array>" in str(caught.value)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty", "the file is empty"),
        ("text", "not a readable video"),  # a text file renamed .mp4
        ("truncated", "not a readable video"),  # the moov atom (at the end) is cut off
        ("truncated_faststart", "not a readable video"),  # index intact, frame data cut off
        ("no_frames", "not a readable video"),
    ],
)
def test_bad_files_name_the_file(videos, name, reason):
    path = videos[name]
    with pytest.raises(VideoDecodeError, match=reason) as caught:
        load_video(path, num_frames=4)
    error = caught.value
    assert isinstance(error, VtzooError)
    assert error.source == str(path) and str(path) in str(error)
    if reason == "not a readable video":
        assert set(error.causes) == {"decord", "pyav"} and all(error.causes.values())


def test_zero_frame_video_says_so(videos):
    with pytest.raises(VideoDecodeError) as caught:
        load_video(videos["no_frames"], num_frames=2, backend="pyav")
    assert "no video stream" in caught.value.causes["pyav"]


def test_missing_file_and_bad_bytes(tmp_path, videos):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(VideoDecodeError, match=r"nowhere\.mp4: no such file"):
        load_video(missing, num_frames=2)
    with pytest.raises(VideoDecodeError, match="not a file"):
        load_video(tmp_path, num_frames=2)
    with pytest.raises(VideoDecodeError, match=r"<bytes>: the bytes are empty"):
        load_video(b"", num_frames=2)
    with pytest.raises(VideoDecodeError, match=r"<bytes>: not a readable video"):
        load_video(videos["text"].read_bytes(), num_frames=2)
    with pytest.raises(VideoDecodeError, match="no such file"):
        probe_video(missing)
    with pytest.raises(TypeError, match="takes a path, bytes"):
        load_video(12345, num_frames=2)
