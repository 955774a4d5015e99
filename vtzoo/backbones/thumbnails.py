"""Thumbnail clip features: every frame sampled at ``fps``, shrunk to ``size`` x ``size`` RGB in
[0, 1] and flattened (3 * size^2 values). Parameter-free features, for models defined on clip
features (VideoBERT, CBT, COOT, ...) trained where no pretrained video network is available.

Plain thumbnails are dominated by *where* things are: two frames of different objects at the
same place are closer than two frames of one object a little apart, so a k-means vocabulary over
them (VideoBERT's visual words) groups frames by position and colour, never by shape. With
``centre``, each frame is first shifted (circularly) so the centroid of its foreground, the
pixels that differ from the frame's border colour by more than ``threshold``, sits in the
middle, the border colour is subtracted, and the centroid's position (x, y in [-0.5, 0.5]) is
appended, times ``position_weight``: the thumbnail then shows what the object looks like and the
two extra values where it is (3 * size^2 + 2 values).

``ThumbnailClips`` has the interface of :class:`~vtzoo.backbones.s3d.clips.S3DClips`: a path,
bytes or decoded frames in, ``(N, dim)`` features and a provenance record out; a float tensor
``(N, dim)`` is taken as features already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vtzoo.errors import InputError


@dataclass
class ThumbnailClips:
    fps: float = 8.0
    size: int = 16
    centre: bool = False
    position_weight: float = 8.0
    threshold: float = 0.3

    @property
    def dim(self) -> int:
        return 3 * self.size * self.size + (2 if self.centre else 0)

    @property
    def extractor_id(self) -> str:
        centred = f"/centred(w={self.position_weight:g},t={self.threshold:g})" if self.centre else ""
        return f"thumbnails/{self.size}px/{self.fps:g}fps{centred}"

    def __call__(self, video: Any, source: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """(N, dim) features of one video (one row per sampled frame) and its provenance record."""
        from vtzoo.video import Preprocess, load_video

        record = {"source": source, "backend": None, "fallback": None, "indices": None, "timestamps": None, "rotation": 0}
        if isinstance(video, torch.Tensor) and video.is_floating_point() and video.dim() == 2:
            if video.shape[1] != self.dim:
                raise InputError(f"clip features must be (N, {self.dim}), got {tuple(video.shape)}", source=source)
            return video.float(), record
        preprocess = None if self.centre else Preprocess(resize=[self.size, self.size])
        clip = load_video(video, fps=self.fps, preprocess=preprocess, source_fps=self.fps)
        frames = clip.frames[clip.mask.bool()]
        features = centred_thumbnails(frames, self.size, self.threshold, self.position_weight) if self.centre \
            else frames.flatten(1).float()
        if features.shape[1] != self.dim:  # a VideoClip decoded for another operator comes as it is
            raise InputError(f"thumbnails need frames of {self.size}x{self.size} px, got a clip of "
                             f"{tuple(clip.frames.shape[-2:])}: pass the video itself", source=source)
        record.update(backend=clip.backend, indices=list(clip.indices), timestamps=list(clip.timestamps),
                      rotation=getattr(clip, "rotation", 0), clips=int(features.shape[0]))
        return features, record


def centred_thumbnails(frames: torch.Tensor, size: int, threshold: float, position_weight: float) -> torch.Tensor:
    """(T, 3, H, W) frames in [0, 1] -> (T, 3 * size^2 + 2): object-centred thumbnails + position."""
    frames = frames.float()
    _, _, height, width = frames.shape
    border = torch.cat([frames[..., 0, :], frames[..., -1, :], frames[..., :, 0], frames[..., :, -1]], dim=-1)
    foreground = frames - border.median(dim=-1).values[..., None, None]
    mask = (foreground.abs().sum(1) > threshold).float()  # (T, H, W)
    mass = mask.sum((1, 2))
    ys, xs = torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32)
    # an empty frame keeps its centre
    cy = torch.where(mass > 0, (mask.sum(2) * ys).sum(1) / mass.clamp(min=1), torch.tensor((height - 1) / 2))
    cx = torch.where(mass > 0, (mask.sum(1) * xs).sum(1) / mass.clamp(min=1), torch.tensor((width - 1) / 2))
    shifted = torch.stack([
        torch.roll(frame, shifts=(int(round(height / 2 - y)), int(round(width / 2 - x))), dims=(1, 2))
        for frame, y, x in zip(foreground, cy.tolist(), cx.tolist())
    ])
    thumbs = F.interpolate(shifted, size=(size, size), mode="area").flatten(1)
    position = torch.stack([(cx + 0.5) / width - 0.5, (cy + 0.5) / height - 0.5], dim=1) * position_weight  # 0: the middle
    return torch.cat([thumbs, position], dim=1)
