"""The experts' pieces: resampling, VGGish front end edges, PCA, irCSN clips, CLIP crop, audio decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.operators.mdmmt.experts.ircsn152.model import IrCsnConfig, IrCsnModel
from vtzoo.operators.mdmmt.experts.vggish import audio
from vtzoo.operators.mdmmt.experts.vggish.model import VggishPostprocessor

from .conftest import TINY_CLIP

VGGISH_CASE = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "vggish" / "visible_3s16k_44k1stereo"


def test_resampler_reproduces_resampy_output_of_the_fixture():
    outputs = load_file(str(VGGISH_CASE / "outputs.safetensors"))
    mono, expected = outputs["mono_mc"].numpy(), outputs["resampled_mc"].numpy()
    assert np.abs(audio.resample_polyphase(mono, 44100, 16000) - expected).max() < 1e-10
    assert np.abs(audio.resample_direct(mono[:8820], 44100, 16000) - audio.resample_polyphase(mono[:8820], 44100, 16000)).max() < 1e-10


@pytest.mark.parametrize("rate", [8000, 22050, 32000, 48000])
def test_polyphase_equals_direct_resampling(rate):
    x = np.random.RandomState(rate).randn(rate // 4)
    fast, slow = audio.resample_polyphase(x, rate, 16000), audio.resample_direct(x, rate, 16000)
    assert fast.shape == (int(len(x) * 16000 / rate),)
    assert np.abs(fast - slow).max() < 1e-9


def test_kaiser_best_table():
    window, per_crossing = audio.kaiser_best_filter()
    assert per_crossing == 8192 and window.shape == (50 * 8192 + 1,)
    assert window[0] == pytest.approx(0.9173473712608761, abs=1e-15)  # rolloff * sinc(0) * kaiser peak


def test_front_end_needs_one_full_window():
    # 96 frames of 400 samples, hop 160: 400 + 95 * 160 = 15600 samples at 16 kHz
    assert audio.waveform_to_examples(np.zeros(15600), 16000).shape == (1, 1, 96, 64)
    with pytest.raises(audio.AudioTooShort, match="shorter than one VGGish window"):
        audio.waveform_to_examples(np.zeros(15599), 16000)


def test_pca_postprocessing_by_hand():
    pproc = VggishPostprocessor(4)
    pproc.pca_eigen_vectors.copy_(2 * torch.eye(4))
    pproc.pca_means.fill_(0.5)
    x = torch.tensor([[0.5, 1.0, 2.0, -3.0]])
    # 2 * (x - 0.5) = [0, 1, 3, -7] -> clip to [-2, 2] -> round((v + 2) * 255 / 4)
    assert pproc(x).tolist() == [[128.0, 191.0, 255.0, 0.0]]


def test_ircsn_last_clip_resamples_the_leftover_frames():
    expert = vtzoo.create("ircsn152", weights="random", layers=[1, 1, 1, 1], frames_per_clip=32)
    frames = torch.arange(70, dtype=torch.float32).view(70, 1, 1, 1).expand(70, 3, 2, 2)
    clips = expert.clip_frames(frames)  # (clips, 3, 32, 2, 2)
    assert clips.shape == (3, 3, 32, 2, 2)
    assert clips[1, 0, :, 0, 0].tolist() == list(range(32, 64))
    tail = clips[2, 0, :, 0, 0].tolist()
    assert tail == np.ceil(np.linspace(64, 69, 32)).tolist() and tail[0] == 64 and tail[-1] == 69


def test_ircsn_tiny_shapes_and_bn_eps():
    model = IrCsnModel(IrCsnConfig(layers=[1, 1, 1, 1], num_classes=0)).eval()
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d))
    with torch.no_grad():
        stages = model.stages(torch.randn(1, 3, 8, 32, 32))
    assert stages["stem"].shape == (1, 64, 8, 8, 8)  # the stem keeps T
    assert stages["layer2"].shape == (1, 512, 4, 4, 4)  # T halves in layers 2-4 as well
    assert stages["layer4"].shape == (1, 2048, 1, 1, 1)
    assert model.features(torch.randn(1, 3, 2, 16, 16)).shape == (1, 2048)


def test_clip_expert_feeds_the_first_full_patches_of_the_228_crop():
    from vtzoo.errors import ConfigError

    expert = vtzoo.create("clip_frames", weights="random", clip=TINY_CLIP, size=36, precision="fp32")
    frames = torch.randn(3, 3, 36, 36)
    with torch.no_grad():
        expected = expert.model.towers.encode_image(frames[..., :32, :32])
        assert torch.allclose(expert.model(frames), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="ViT expects 32"):
        vtzoo.create("clip_frames", weights="random", clip=TINY_CLIP, size=48)


def test_audio_track_decoding(video_with_audio, video_without_audio):
    waveform, rate = audio.load_audio(video_with_audio)
    assert rate == 48000 and waveform.shape[1] == 6 and waveform.shape[0] > 5 * 48000
    assert np.isfinite(waveform).all() and np.abs(waveform).max() <= 1.0
    assert audio.load_audio(video_without_audio) is None


def test_vggish_expert_timings_and_16bit_round_trip():
    expert = vtzoo.create("vggish", weights="random", conv_channels=(4, 4, 8, 8), hidden_size=16, precision="fp32")
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(2.5 * 44100)) / 44100)
    seq = expert.embed_waveform(np.stack([tone, tone], 1), 44100)
    assert seq.timings.tolist() == [[0.0, 0.96], [0.96, 1.92]]
    quantised = np.round(tone * 32768) / 32768
    with torch.no_grad():
        expected = expert.model(audio.waveform_to_examples(quantised, 44100)).numpy()
    assert np.allclose(seq.features, expected, atol=1e-6)
    with pytest.raises(audio.AudioTooShort):
        expert.embed_waveform(np.zeros(8000), 16000)


def test_clip_expert_loads_a_transformers_clip_folder(tmp_path):
    from transformers import CLIPModel

    from vtzoo.backbones.clip import CLIPSizes

    torch.manual_seed(0)
    reference = CLIPModel(CLIPSizes(**TINY_CLIP).transformers_config()).eval()
    reference.save_pretrained(tmp_path)
    expert = vtzoo.create("clip_frames", weights=str(tmp_path), clip=TINY_CLIP, size=36, precision="fp32")
    frames = torch.randn(2, 3, 36, 36)
    with torch.no_grad():
        expected = reference.get_image_features(pixel_values=frames[..., :32, :32])
        got = expert.model(frames)
    expected = getattr(expected, "pooler_output", expected)
    assert expert.dim == 32 and torch.allclose(got, expected, atol=1e-5)


def test_too_short_audio_makes_a_missing_expert_with_a_warning():
    from types import SimpleNamespace

    from vtzoo.operators.mdmmt.collate import ExpertSequence

    from .conftest import TINY_MDMMT

    def short_audio(source):
        raise audio.AudioTooShort("audio of 0.500 s is shorter than one VGGish window (0.96 s)")

    def frames(source):
        return ExpertSequence(np.ones((2, 4)), [[0.0, 1.0], [1.0, 2.0]]), {"source": source, "backend": "pyav"}

    op = vtzoo.create("mdmmt", weights="random", **TINY_MDMMT)
    experts = {"CLIP": SimpleNamespace(extract=frames), "tf_vggish": SimpleNamespace(extract=short_audio)}
    with pytest.warns(UserWarning, match="'tf_vggish'.*missing expert"):
        out, records = op._extract(experts, "clip.mp4")
    assert list(out) == ["CLIP"] and list(records) == ["CLIP"]


def test_full_size_expert_networks():
    from vtzoo.operators.mdmmt.experts.vggish.model import VggishConfig, VggishModel

    with torch.device("meta"):
        vggish = VggishModel(VggishConfig())
        csn = IrCsnModel(IrCsnConfig())
    # VGGish: 72,141,184 parameters (fixture config 'params_total'); pproc buffers are not parameters
    assert sum(p.numel() for p in vggish.parameters()) == 72_141_184
    # irCSN-152: 29,854,992 float state-dict values incl. BatchNorm running statistics (fixture README)
    floats = sum(v.numel() for v in csn.state_dict().values() if v.is_floating_point())
    assert floats == 29_854_992 and len(csn.state_dict()) == 932
