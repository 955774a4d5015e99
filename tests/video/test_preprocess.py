"""Preprocess against torchvision's PIL pipeline (what CLIP-style originals run), and geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtzoo.video import Preprocess, load_video
from vtzoo.video.preprocess import center_crop, short_side_size

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _frames(t: int = 2, h: int = 61, w: int = 97, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    # smooth content plus noise, so resampling differences show
    y, x = np.mgrid[0:h, 0:w]
    base = (np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1))[None].repeat(t, 0)
    noisy = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
    return torch.from_numpy(noisy).permute(0, 3, 1, 2)


def _clip_pipeline_reference(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """CLIP's transform (torchvision Resize(32, BICUBIC) -> CenterCrop(32) -> ToTensor ->
    Normalize on PIL images) spelled out with PIL for a 61x97 frame: the short side 61 -> 32,
    the long side int(32 * 97 / 61) = 50; crop box left round((50 - 32) / 2) = 9, top 0."""
    from PIL import Image

    out = []
    for frame in frames:
        image = Image.fromarray(frame.permute(1, 2, 0).numpy()).resize((50, 32), Image.BICUBIC).crop((9, 0, 41, 32))
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(255)
        out.append((pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
    return torch.stack(out)


def test_pil_backend_matches_clip_pipeline_exactly():
    frames = _frames()
    pre = Preprocess(resize=32, crop=32, mean=CLIP_MEAN, std=CLIP_STD, interpolation="bicubic")
    expected = _clip_pipeline_reference(frames, CLIP_MEAN, CLIP_STD)
    out = pre(frames)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_torch_backend_is_close_to_pil():
    frames = _frames()
    pil = Preprocess(resize=32, crop=32, resize_backend="pil")(frames)
    torch_resized = Preprocess(resize=32, crop=32, resize_backend="torch")(frames)
    diff = (pil - torch_resized).abs()
    assert diff.mean() < 1.5 / 255 and diff.max() < 12 / 255
    assert torch_resized.min() >= 0 and torch_resized.max() <= 1  # clamped like an 8-bit image


def test_default_is_plain_float():
    frames = _frames()
    out = Preprocess()(frames)
    torch.testing.assert_close(out, frames.float() / 255)


def test_short_side_and_crop_geometry():
    assert short_side_size(61, 97, 32) == (32, 50)  # int(32 * 97 / 61) = int(50.88)
    assert short_side_size(720, 1280, 224) == (224, 398)  # int(398.2)
    assert short_side_size(100, 50, 20) == (40, 20)
    image = torch.arange(5 * 8).view(1, 1, 5, 8)
    # offsets round((5 - 2) / 2) = 2 (round half to even), round((8 - 3) / 2) = 2
    assert center_crop(image, (2, 3)).tolist() == [[[[18, 19, 20], [26, 27, 28]]]]
    padded = center_crop(torch.ones(1, 1, 2, 2), (4, 4))  # larger than the image: zero padding
    assert padded[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]


def test_normalise_and_input_range():
    frames = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))(frames)
    assert out[0, :, 0, 0].tolist() == [2.0, 1.0, 0.5]
    scaled = Preprocess(input_range=(0, 255), mean=(127.5,) * 3, std=(127.5,) * 3)(frames)
    assert torch.allclose(scaled, torch.ones_like(scaled))


def test_resize_after_crop_frozen_in_time_order():
    frames = _frames(1, 40, 60)
    out = Preprocess(resize=32, crop=32, resize_after_crop=16)(frames)
    assert out.shape == (1, 3, 16, 16)


def test_from_card_ignores_unknown_keys():
    card = {
        "frames": 12,
        "fps": 1,
        "resize": 224,
        "crop": [224, 200],
        "mean": list(CLIP_MEAN),
        "std": list(CLIP_STD),
        "interpolation": "bicubic",
        "input_range": [0, 1],
        "tokenizer": {"repo": "x"},
    }
    pre = Preprocess.from_card(card)
    assert pre.resize == 224 and pre.crop == (224, 200) and pre.mean == CLIP_MEAN and pre.std == CLIP_STD
    assert pre.input_range == (0.0, 1.0)
    with pytest.raises(ValueError, match="interpolation"):
        Preprocess.from_card({"interpolation": "lanczos"})
    with pytest.raises(ValueError, match="mean and std"):
        Preprocess(mean=(0.5, 0.5, 0.5))


def test_load_video_applies_preprocess_and_records_it(videos):
    pre = Preprocess(resize=24, crop=24, mean=CLIP_MEAN, std=CLIP_STD)
    clip = load_video(videos["odd"], num_frames=3, preprocess=pre)
    assert clip.frames.shape == (3, 3, 24, 24) and clip.frames.dtype == torch.float32
    raw = load_video(videos["odd"], num_frames=3)
    pixels = (raw.frames * 255).round().to(torch.uint8)
    torch.testing.assert_close(clip.frames, pre(pixels), atol=1e-6, rtol=0)
    assert clip.provenance()["preprocess"]["resize"] == 24
