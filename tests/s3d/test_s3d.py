"""S3D backbone: golden parity, the original's layout quirks, conversion, windowing, operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.backbones.s3d import (
    S3D,
    EmptyVideoError,
    S3DConfig,
    S3DFeatureExtractor,
    S3DWindowing,
    build_s3d,
    convert_original_state_dict,
    frames_to_windows,
    window_features,
)
from vtzoo.backbones.s3d.model import TFSamePadMaxPool3d, space_to_depth
from vtzoo.errors import ConfigError, InputError
from vtzoo.registry.golden import verify_case
from vtzoo.registry.weights import WeightsError

CASE = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "videoclip" / "s3d"




@pytest.fixture(scope="module")
def original_state_dict() -> dict[str, torch.Tensor]:
    return load_file(str(CASE / "original_state_dict.safetensors"))


def test_golden_case_passes_with_every_output_computed():
    lines: list[str] = []
    assert verify_case(CASE, emit=lines.append), "\n".join(lines)
    computed = [line for line in lines if "max_abs_err=" in line]
    assert len(computed) == 4 and not any("SKIPPED" in line for line in lines)


def test_full_size_network_matches_the_original_state_dict_layout(original_state_dict):
    model = S3D(S3DConfig())
    own = model.state_dict()
    # the fixture is the original's state dict minus the 5 text-branch keys: 532 tensors, 9,691,964 elements
    assert set(own) == set(original_state_dict)
    assert sum(v.numel() for v in own.values()) == 9_691_964
    assert all(own[k].shape == original_state_dict[k].shape for k in own)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    expected_params = sum(v.numel() for k, v in original_state_dict.items() if not k.endswith(buffers))
    assert sum(p.numel() for p in model.parameters()) == expected_params


def test_space_to_depth_channel_order_is_dt_dh_dw_then_c():
    b, c, t, h, w = 1, 3, 4, 4, 6
    video = torch.arange(b * c * t * h * w, dtype=torch.float32).view(b, c, t, h, w)
    out = space_to_depth(video)
    assert out.shape == (1, 24, 2, 2, 3)
    for dt, dh, dw, ch in [(0, 0, 0, 0), (1, 0, 1, 2), (1, 1, 1, 1), (0, 1, 0, 2)]:
        channel = ((dt * 2 + dh) * 2 + dw) * c + ch
        # output (T', H', W') = (1, 0, 2) comes from input (2 + dt, dh, 4 + dw)
        assert out[0, channel, 1, 0, 2] == video[0, ch, 2 + dt, dh, 4 + dw]


def test_tf_same_pool_pads_with_zero_behind_and_uses_ceil_mode():
    pool = TFSamePadMaxPool3d((1, 3, 3), (1, 2, 2))
    x = -torch.ones(1, 1, 1, 4, 4)  # negative values: a zero pad would win where it is read
    x[0, 0, 0, 0, 0] = 5.0
    out = pool(x)
    # padded to 5x5 (one zero row/column behind), windows at 0 and 2: ceil((5 - 3) / 2) + 1 = 2
    assert out.shape == (1, 1, 1, 2, 2)
    assert out[0, 0, 0].tolist() == [[5.0, 0.0], [0.0, 0.0]]
    # kernel 2 stride 2 pads nothing; an odd size keeps its partial last window (ceil_mode)
    assert TFSamePadMaxPool3d((2, 2, 2), (2, 2, 2))(torch.rand(1, 1, 3, 3, 3)).shape == (1, 1, 2, 2, 2)


def test_converter_drops_the_text_branch_and_rejects_other_formats(original_state_dict):
    with_text = dict(original_state_dict)
    with_text["text_module.fc1.weight"] = torch.zeros(2048, 300)
    with_text["text_module.word_embd.weight"] = torch.zeros(3, 300)
    converted = convert_original_state_dict({f"module.{k}": v for k, v in with_text.items()})
    assert set(converted) == set(original_state_dict)
    with pytest.raises(WeightsError, match="not an original S3D"):
        convert_original_state_dict({"encoder.weight": torch.zeros(2)})


def test_release_file_with_text_branch_loads_and_reproduces_the_reference(tmp_path, original_state_dict):
    release = dict(original_state_dict)  # float16 as in the fixture; cast on load
    release["text_module.fc2.bias"] = torch.zeros(512)
    path = tmp_path / "s3d_howto100m.pth"
    torch.save(release, path)
    op = vtzoo.create("s3d", weights=str(path), precision="fp32")
    video = load_file(str(CASE / "inputs.safetensors"))["video"]
    expected = load_file(str(CASE / "outputs.safetensors"))["video_embedding"]
    with torch.inference_mode():
        got = op.model(video).video_embedding
    assert op.model.fc.weight.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_frames_to_windows_zero_pads_the_last_window():
    frames = torch.rand(65, 3, 4, 4)
    mmpt = S3DWindowing(window_frames=30)
    windows = frames_to_windows(frames, mmpt)
    assert windows.shape == (3, 3, 30, 4, 4)
    assert torch.equal(windows[1, :, 7], frames[37])  # second window, 8th frame
    assert torch.equal(windows[2, :, :5], frames[60:].transpose(0, 1))
    assert windows[2, :, 5:].abs().sum() == 0
    assert frames_to_windows(frames[:60], mmpt).shape[0] == 2  # a whole number of windows: no padding
    with pytest.raises(EmptyVideoError):
        frames_to_windows(frames[:0], mmpt)


def _coot_original_starts(num_frames: int, kernel: int = 32, stride: int = 16) -> list[int]:
    """The window loop of COOT's extract_100m_features.py, written out."""
    starts = []
    for pointer in range(0, num_frames, stride):
        if pointer + kernel <= num_frames:
            starts.append(pointer)
        elif num_frames > kernel:
            starts.append(num_frames - kernel)
    return starts


@pytest.mark.parametrize("num_frames", [20, 31, 32, 33, 47, 48, 64, 65, 85, 100])
def test_coot_windowing_is_the_original_loop(num_frames):
    coot = S3DWindowing.coot()
    assert coot.starts(num_frames) == _coot_original_starts(num_frames)
    assert coot.fps == 16 and coot.crop == 256 and not coot.l2_normalize and coot.features_per_second == 1.0
    frames = torch.rand(num_frames, 3, 2, 2)
    windows = frames_to_windows(frames, coot)
    if num_frames < 32:  # one window: the first 16 frames, zero-padded to 16 when shorter
        assert windows.shape == (1, 3, 16, 2, 2)
        assert torch.equal(windows[0, :, : min(16, num_frames)], frames[:16].transpose(0, 1))
    else:  # a window past the end is the last 32 frames (so the tail can repeat); never padded
        starts = _coot_original_starts(num_frames)
        assert windows.shape == (len(starts), 3, 32, 2, 2)
        for window, start in zip(windows, starts):
            assert torch.equal(window, frames[start : start + 32].transpose(0, 1))


def test_windowing_fields_are_checked():
    with pytest.raises(ConfigError, match="tail"):
        S3DWindowing(tail="wrap")
    with pytest.raises(ConfigError, match="window_frames"):
        S3DWindowing(window_frames=0)
    with pytest.raises(ConfigError, match="did you mean|Did you mean: window_frames"):
        vtzoo.create("s3d", weights="random", window_frame=8)


def test_window_features_are_l2_normalised_video_embeddings():
    torch.manual_seed(0)
    model = S3D().eval()
    windows = torch.rand(3, 3, 8, 32, 32)
    with torch.inference_mode():
        raw = model(windows).video_embedding
        feats = window_features(model, windows, batch_size=2)
        pooled = window_features(model, windows, output="mixed_5c", l2_normalize=False)
    torch.testing.assert_close(feats, raw / raw.norm(dim=-1, keepdim=True))
    assert pooled.shape == (3, 1024)


def test_extractor_on_decoded_frames_gives_one_feature_per_window_and_truncates():
    torch.manual_seed(0)
    windowing = S3DWindowing(fps=8, window_frames=8, resize=32, crop=32, max_windows=2)
    extractor = S3DFeatureExtractor(S3D(), windowing)
    frames = np.random.default_rng(0).integers(0, 256, size=(20, 40, 48, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="only the first 2"):
        result = extractor(frames)
    assert result.features.shape == (2, 512) and result.truncated and result.num_frames == 16
    with pytest.raises(EmptyVideoError):
        extractor(frames[:0])


def test_s3d_operator_is_registered_and_embeds_videos():
    assert "s3d" in vtzoo.list_operators()
    op = vtzoo.create("s3d", weights="random", resize=32, crop=32, window_frames=8, precision="fp32")
    assert op.windowing.fps == 30 and op.windowing.window_frames == 8
    frames = np.random.default_rng(1).integers(0, 256, size=(12, 36, 36, 3), dtype=np.uint8)
    emb = op.embed_video([frames, frames[:8]])
    assert emb.tokens.shape == (2, 2, 512) and emb.mask.tolist() == [[1, 1], [1, 0]]
    torch.testing.assert_close(emb.pooled[1], emb.tokens[1, 0])
    torch.testing.assert_close(emb.pooled[0], emb.tokens[0].mean(0))


@pytest.mark.parametrize("prefix", ["t6_h34_w30", "t30_h40_w36"])
def test_odd_and_partial_window_sizes_against_the_original(original_state_dict, prefix):
    """Outputs of the original s3dg.py on sizes with partial pooling windows (see data/README.md)."""
    ref = load_file(str(Path(__file__).parent / "data" / "original_odd_sizes.safetensors"))
    model = S3D()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in original_state_dict.items()})
    with torch.inference_mode():
        out = model.eval()(ref[f"{prefix}.video"])
    torch.testing.assert_close(out.video_embedding, ref[f"{prefix}.video_embedding"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out.mixed_5c, ref[f"{prefix}.mixed_5c"], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory) -> Path:
    """A 2.5 s, 30 fps, 64x48 video with moving content."""
    import av

    path = tmp_path_factory.mktemp("video") / "small.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(75):
            image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
            image[:, (i % 64)] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_chunked_decoding_gives_the_features_of_one_pass(small_mp4):
    torch.manual_seed(0)
    model = S3D().eval()
    windowing = S3DWindowing(resize=32, crop=32, window_frames=10)
    one_pass = S3DFeatureExtractor(model, windowing, chunk_windows=100)(str(small_mp4))
    chunked = S3DFeatureExtractor(model, windowing, chunk_windows=2)(str(small_mp4))
    # 2.5 s at 30 fps = 75 frames -> 8 windows of 10 frames, the last one half zero-padded
    assert one_pass.features.shape == (8, 512) and one_pass.num_frames == 75
    torch.testing.assert_close(chunked.features, one_pass.features)
    capped = S3DFeatureExtractor(model, S3DWindowing(resize=32, crop=32, window_frames=10, max_windows=3))
    with pytest.warns(UserWarning, match="has 8 windows"):
        first = capped(str(small_mp4))
    torch.testing.assert_close(first.features, one_pass.features[:3])


def test_coot_windowing_on_a_file_decodes_in_chunks_like_one_pass(small_mp4):
    """COOT's rule on an encoded video: every frame at k / 16 s (2.5 s -> 40 frames), windows at
    the original loop's starts (0, 8, 8: the tail window repeats), decoded two windows at a time."""
    from vtzoo.video import load_video

    torch.manual_seed(0)
    model = S3D().eval()
    coot = S3DWindowing.coot(resize=32, crop=32)
    result = S3DFeatureExtractor(model, coot, chunk_windows=2)(str(small_mp4))
    frames = load_video(str(small_mp4), fps=16, preprocess=S3DFeatureExtractor(model, coot).preprocess).frames
    assert frames.shape[0] == 40 and result.num_frames == 40 and result.duration == pytest.approx(2.5)
    windows = torch.stack([frames[s : s + 32] for s in _coot_original_starts(40)]).transpose(1, 2)
    with torch.inference_mode():
        expected = model(windows).video_embedding  # not normalised
    torch.testing.assert_close(result.features, expected, atol=1e-5, rtol=0)
    assert torch.equal(result.features[1], result.features[2])
    assert result.provenance["indices"] == load_video(str(small_mp4), fps=16).indices  # every frame used once


def test_operator_provenance_and_decoded_clips(small_mp4):
    op = vtzoo.create("s3d", weights="random", precision="fp32", resize=32, crop=32, window_frames=10)
    from_file = op.embed_video(str(small_mp4))
    provenance = from_file.extras["provenance"][0]
    assert provenance["source"] == str(small_mp4) and provenance["backend"] in ("decord", "pyav")
    assert provenance["indices"] == list(range(75)) and len(provenance["timestamps"]) == 75  # 30 fps source
    # a clip decoded with the operator's own input spec gives the same features
    clip = op.load_clip(str(small_mp4))
    assert len(clip) == 75
    torch.testing.assert_close(op.embed_video([clip]).tokens, from_file.tokens)
    # one decoded for another operator is refused, naming the source
    other = vtzoo.create("s3d", weights="random", resize=48, crop=48, window_frames=10).load_clip(str(small_mp4))
    with pytest.raises(InputError, match="decoded for another operator"):
        op.embed_video([other])


def test_build_s3d_is_the_one_loading_path_and_seeded(tmp_path, original_state_dict):
    first, resolved = build_s3d("random", seed=3)
    again, _ = build_s3d("random", seed=3)
    other, _ = build_s3d("random", seed=4)
    assert resolved.kind == "random"
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(first.fc.weight, other.fc.weight)
    path = tmp_path / "s3d_howto100m.pth"
    torch.save({**original_state_dict, "text_module.fc1.bias": torch.zeros(2048)}, path)
    loaded, resolved = build_s3d(str(path))
    assert resolved.format == "original"
    torch.testing.assert_close(loaded.fc.weight, original_state_dict["fc.weight"].float())


def test_config_from_original_arguments():
    assert S3DConfig.from_original({"num_classes": 512, "gating": True, "space_to_depth": True}) == S3DConfig()
    case = {"golden": {"family": "s3d"}, "constructor": {"num_classes": 256, "space_to_depth": False}}
    assert S3DConfig.from_original(case) == S3DConfig(embedding_dim=256, space_to_depth=False)
