"""The torch resize path converts one frame at a time to float: same values as the whole clip at once."""

import pytest
import torch
import torch.nn.functional as F

from vtzoo.video import Preprocess


@pytest.mark.parametrize("interpolation,antialias", [("bilinear", False), ("bicubic", True)])
def test_per_frame_resize_equals_the_batched_interpolation(interpolation, antialias):
    frames = torch.randint(0, 256, (3, 3, 90, 160), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pre = Preprocess(resize=(45, 64), interpolation=interpolation, resize_backend="torch", antialias=antialias)
    expected = F.interpolate(frames.float() / 255.0, size=(45, 64), mode=interpolation, align_corners=False,
                             antialias=antialias)
    if interpolation == "bicubic":
        expected = expected.clamp(0, 1)
    assert torch.equal(pre(frames), expected)
