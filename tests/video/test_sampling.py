"""Sampling rules (hand-computed expectations), windows, padding, replay and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtzoo.video import VideoClip, VideoDecodeError, load_video, sampling_from_card, stack_clips
from vtzoo.video.sampling import (
    fps_indices,
    middle_indices,
    nearest_frames,
    uniform_indices,
    window_range,
)

TS_25 = np.arange(50) / 25.0  # a 2 s clip at 25 fps


def test_uniform_is_clip4clips_linspace_rule():
    # np.linspace(0, 131, 12) = 0, 11.909, 23.818, ... rounded down
    assert uniform_indices(0, 131, 12) == [0, 11, 23, 35, 47, 59, 71, 83, 95, 107, 119, 131]
    assert uniform_indices(0, 9, 4) == [0, 3, 6, 9]
    assert uniform_indices(0, 2, 5) == [0, 0, 1, 1, 2]  # fewer frames than asked: repeats
    assert uniform_indices(0, 2, 5, pad=True) == [0, 1, 2]  # or each once, for padding


def test_middle_of_segments_rule():
    # 10 frames, 4 segments: edges linspace(0, 10, 5) -> 0, 2, 5, 7, 10; middles (s + e - 1) // 2
    assert middle_indices(0, 9, 4) == [0, 3, 5, 8]
    assert middle_indices(10, 19, 4) == [10, 13, 15, 18]
    assert middle_indices(0, 2, 5) == [0, 1, 2]


def test_window_range_is_start_inclusive_end_exclusive():
    assert window_range(TS_25, None, None) == (0, 49)
    assert window_range(TS_25, 0.5, 1.0) == (13, 24)  # 0.48 < 0.5 <= 0.52; 1.0 excluded
    assert window_range(TS_25, 0.48, None) == (12, 49)
    assert window_range(TS_25, 1.5, 99.0) == (38, 49)


def test_nearest_frames_ties_go_to_the_earlier_frame():
    timestamps = np.array([0.0, 0.1, 0.2, 0.3])
    assert nearest_frames(timestamps, np.array([0.0, 0.04, 0.05, 0.06, 0.35, 9.0]), 0, 3) == [0, 0, 0, 1, 3, 3]


def test_fps_sampling_on_known_rate():
    # 25 fps, 2 s: at 4 fps t = 0, .25, .5, ..., 1.75 -> frames 0, 6 (.24), 12 (.48 and .52
    # tie -> earlier), 19 (.76), 25, 31 (1.24), 37 (1.48 and 1.52 tie), 44 (1.76)
    assert fps_indices(TS_25, 2.0, 4.0, None, None, None) == [0, 6, 12, 19, 25, 31, 37, 44]
    # at 1 fps from 0.5 s: t = 0.5, 1.5 -> frames 13 (.52: frame 12 at .48 is outside the
    # window), 37 (1.48 and 1.52 tie -> earlier)
    assert fps_indices(TS_25, 2.0, 1.0, 0.5, None, None) == [13, 37]
    # capped at 3 frames: linspace(0, 7, 3) -> positions 0, 3, 7 of the 8 above
    assert fps_indices(TS_25, 2.0, 4.0, None, None, 3) == [0, 19, 44]


def test_fps_sampling_on_a_file(videos, media):
    clip = load_video(videos["cfr"], fps=5.0)  # 50 frames at 25 fps: every 5th frame
    assert clip.indices == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert media.decoded_index(clip.frames) == clip.indices
    assert clip.timestamps == pytest.approx([i / 25 for i in clip.indices])
    assert clip.sampling == {"mode": "fps", "fps": 5.0, "max_frames": None, "start": None, "end": None, "pad": False}


def test_fps_sampling_with_cap_and_padding(videos):
    capped = load_video(videos["cfr"], fps=5.0, max_frames=4)
    assert capped.indices == [0, 15, 30, 45]  # linspace(0, 9, 4) -> 0, 3, 6, 9 of the 10 times
    padded = load_video(videos["cfr"], fps=1.0, max_frames=4, pad=True)
    assert padded.indices == [0, 25] and padded.mask.tolist() == [1, 1, 0, 0]
    assert padded.frames.shape[0] == 4 and padded.frames[2:].abs().sum() == 0


def test_window_in_seconds(videos, media):
    clip = load_video(videos["long"], num_frames=8, start=2.0, end=5.5)  # frames 50..137 at 25 fps
    assert clip.indices == np.linspace(50, 137, 8).astype(int).tolist()
    assert media.decoded_index(clip.frames) == clip.indices
    assert all(2.0 <= t < 5.5 for t in clip.timestamps)


def test_middle_sampling_and_padding_on_a_file(videos):
    clip = load_video(videos["cfr"], num_frames=4, sampling="middle")
    # edges linspace(0, 50, 5) -> 0, 12, 25, 37, 50; middles 5, 18, 30, 43
    assert clip.indices == [5, 18, 30, 43]
    short = load_video(videos["one"], num_frames=3, sampling="middle", pad=True)
    assert short.indices == [0] and short.mask.tolist() == [1, 0, 0]


def test_replay_recorded_indices(videos):
    first = load_video(videos["cfr"], fps=3.0, start=0.5)
    again = load_video(videos["cfr"], indices=first.provenance()["indices"], backend=first.backend)
    assert again.indices == first.indices
    assert torch.equal(again.frames, first.frames)


def test_window_outside_the_video_is_a_decode_error(videos):
    with pytest.raises(VideoDecodeError, match=r"cfr\.mp4.*no frame is shown in the window \[5, end\)"):
        load_video(videos["cfr"], num_frames=2, start=5.0)
    with pytest.raises(VideoDecodeError, match="outside 0..49"):
        load_video(videos["cfr"], indices=[0, 50])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one of num_frames, fps or indices"),
        ({"num_frames": 4, "fps": 1.0}, "exactly one of"),
        ({"num_frames": 0}, "num_frames must be >= 1"),
        ({"fps": -1.0}, "fps must be > 0"),
        ({"num_frames": 4, "max_frames": 2}, "max_frames"),
        ({"fps": 1.0, "pad": True}, "needs max_frames"),
        ({"num_frames": 4, "start": 3.0, "end": 1.0}, "must be after its start"),
        ({"num_frames": 4, "sampling": "random"}, "sampling must be one of"),
    ],
)
def test_contradictory_arguments(videos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_video(videos["cfr"], **kwargs)


def test_sampling_from_card():
    assert sampling_from_card({"frames": 12, "fps": 1, "sampling": "uniform"}) == {
        "fps": 1.0,
        "max_frames": 12,
        "pad": True,
    }
    assert sampling_from_card({"frames": 4, "sampling": "middle"}) == {"num_frames": 4, "sampling": "middle"}
    assert sampling_from_card({"frames": 8}) == {"num_frames": 8, "sampling": "uniform"}


def _clip(frames: int, real: int, size: int = 4) -> VideoClip:
    data = torch.ones(frames, 3, size, size)
    data[real:] = 0
    mask = torch.tensor([1] * real + [0] * (frames - real))
    return VideoClip(data, mask, list(range(real)), "array", float("nan"), float("nan"), "<array>")


def test_stack_clips_pads_to_the_longest():
    frames, mask = stack_clips([_clip(2, 2), _clip(4, 3), _clip(1, 1)])
    assert frames.shape == (3, 4, 3, 4, 4)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]
    assert frames[mask == 0].abs().sum() == 0 and (frames[mask == 1] == 1).all()
    frames, mask = stack_clips([_clip(2, 2)], pad_to=5)
    assert frames.shape[1] == 5 and mask.tolist() == [[1, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="more than pad_to"):
        stack_clips([_clip(4, 4)], pad_to=3)
    with pytest.raises(ValueError, match="frame shape"):
        stack_clips([_clip(2, 2, size=4), _clip(2, 2, size=5)])
