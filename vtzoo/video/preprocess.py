"""Resize, centre crop and normalise decoded frames, as a model card's preprocessing says.

Order: short-side ``resize`` -> centre ``crop`` -> optional ``resize_after_crop`` -> scale to
``input_range`` -> ``(x - mean) / std``. Output: float32 (T, C, H, W).

Resizing backends (``resize_backend``):

- ``"pil"`` (default for uint8 frames): each frame goes through ``PIL.Image.resize`` and back to
  uint8, exactly as the original CLIP-style pipelines (``torchvision.transforms.Resize`` on PIL
  images) do, so pixels match those pipelines bit for bit.
- ``"torch"`` (used for float frames, or on request): ``torch.nn.functional.interpolate`` with
  ``antialias=True`` in float32, clamped to the input's range (bicubic overshoot would have
  been clipped in an 8-bit image). Faster on batches; within about 1/255 of PIL.

Geometry follows torchvision: ``resize=224`` scales the shorter side to 224 and the longer to
``int(224 * long / short)``; ``resize=[h, w]`` forces a size; the crop offsets are
``round((H - h) / 2)``, ``round((W - w) / 2)``; a crop larger than the image pads it with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

_INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


def _pair(value: int | Sequence[int] | None, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or [height, width], got {value!r}")
    return pair


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_h, new_w) with the shorter side = ``size`` (torchvision's rule, long side truncated)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


@dataclass
class Preprocess:
    """Frame preprocessing. ``Preprocess()`` only converts to float in [0, 1].

    Args:
        resize: shorter side in pixels (int) or an exact ``[height, width]``.
        crop: centre crop, int (square) or ``[height, width]``; applied after ``resize``.
        resize_after_crop: a second resize after the crop (Frozen in Time: 256 -> crop 256 -> 224).
        mean, std: per-channel normalisation, in the units of ``input_range``.
        interpolation: ``"bicubic"`` | ``"bilinear"`` | ``"nearest"``.
        input_range: pixel range before normalisation, ``(0, 1)`` or e.g. ``(0, 255)``.
        resize_backend: ``"pil"`` | ``"torch"`` | ``None`` (PIL for uint8 frames, torch for float).
        antialias: antialiasing for the torch backend (PIL always antialiases when shrinking).
    """

    resize: int | tuple[int, int] | None = None
    crop: int | tuple[int, int] | None = None
    resize_after_crop: int | tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str = "bicubic"
    input_range: tuple[float, float] = (0.0, 1.0)
    resize_backend: str | None = None
    antialias: bool = True

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {self.interpolation!r}")
        if self.resize_backend not in (None, "pil", "torch"):
            raise ValueError(f"resize_backend must be 'pil', 'torch' or None, got {self.resize_backend!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together: give both or neither")
        if self.mean is not None:
            self.mean, self.std = tuple(float(m) for m in self.mean), tuple(float(s) for s in self.std)
        self.input_range = tuple(float(v) for v in self.input_range)  # type: ignore[assignment]
        _pair(self.crop, "crop"), _pair(self.resize_after_crop, "resize_after_crop")

    @classmethod
    def from_card(cls, preprocessing: Mapping[str, Any] | None) -> "Preprocess":
        """Build from a weight card's ``preprocessing`` mapping; keys this class lacks are ignored."""
        known = cls.__dataclass_fields__.keys()
        values = {k: v for k, v in (preprocessing or {}).items() if k in known and v is not None}
        for key in ("resize", "crop", "resize_after_crop"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)

    # ------------------------------------------------------------------------------------------
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, C, H, W) uint8 (0..255) or float (0..1) -> float32 (T, C, H', W')."""
        if frames.dim() != 4:
            raise ValueError(f"Preprocess expects frames (T, C, H, W), got shape {tuple(frames.shape)}")
        if self.resize is not None:
            frames = self._resize(frames, self._resize_size(frames, self.resize))
        if self.crop is not None:
            frames = center_crop(frames, _pair(self.crop, "crop"))
        if self.resize_after_crop is not None:
            frames = self._resize(frames, self._resize_size(frames, self.resize_after_crop))
        frames = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        low, high = self.input_range
        if (low, high) != (0.0, 1.0):
            frames = frames * (high - low) + low
        if self.mean is not None:
            mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
            frames = (frames - mean) / std
        return frames.contiguous()

    def decode_size(self, height: int, width: int) -> tuple[int, int] | None:
        """The (height, width) a decoder can scale frames of this size to, so that the first
        ``resize`` has nothing left to do; None when there is no resize or it would not shrink
        (a decoder never enlarges: upscaling stays with the model's own resampling)."""
        if self.resize is None:
            return None
        if isinstance(self.resize, (int, np.integer)):
            size = short_side_size(height, width, int(self.resize))
        else:
            size = _pair(self.resize, "resize")
        if size[0] >= height or size[1] >= width:
            return None
        return size

    @staticmethod
    def _resize_size(frames: torch.Tensor, size: int | Sequence[int]) -> tuple[int, int]:
        if isinstance(size, (int, np.integer)):
            return short_side_size(frames.shape[-2], frames.shape[-1], int(size))
        return _pair(size, "resize")  # type: ignore[return-value]

    def _resize(self, frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(frames.shape[-2:]) == size or frames.shape[0] == 0:
            return frames
        backend = self.resize_backend or ("pil" if frames.dtype == torch.uint8 else "torch")
        if backend == "pil" and frames.dtype == torch.uint8:
            return _resize_pil(frames, size, self.interpolation)
        return _resize_torch(frames, size, self.interpolation, self.antialias)


def _resize_pil(frames: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    from PIL import Image

    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[interpolation]
    height, width = size
    pixels = frames.permute(0, 2, 3, 1).numpy()
    resized = [np.asarray(Image.fromarray(frame).resize((width, height), method)) for frame in pixels]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)


def _resize_torch(frames: torch.Tensor, size: tuple[int, int], interpolation: str, antialias: bool) -> torch.Tensor:
    kwargs: dict[str, Any] = {}
    if interpolation != "nearest":
        kwargs = {"align_corners": False, "antialias": antialias}
    out = []
    # one frame at a time: a uint8 4K clip never exists as full-resolution float frames at once
    # (one float 4K frame is 100 MB); the interpolation is per frame, so the values are the same
    for frame in frames.split(1):
        x = frame.float() / 255.0 if frame.dtype == torch.uint8 else frame.float()
        out.append(F.interpolate(x, size=size, mode=interpolation, **kwargs))
    x = torch.cat(out)
    if interpolation == "bicubic":  # an 8-bit pipeline would clip the cubic kernel's overshoot
        x = x.clamp(0.0, 1.0)
    return x


def center_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """torchvision's CenterCrop: zero-pad if smaller, then offsets round((H - h) / 2)."""
    crop_h, crop_w = size
    height, width = frames.shape[-2:]
    if crop_h > height or crop_w > width:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        frames = F.pad(frames, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = frames.shape[-2:]
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return frames[..., top : top + crop_h, left : left + crop_w]
