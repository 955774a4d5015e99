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
two extra values where it is (3 * size^2 + 2 values). Two more options of centred thumbnails:
``object_window`` keeps only that fraction of the frame around the object before shrinking (the
object at a finer scale), and ``silhouette`` replaces the colour thumbnail by the object's
foreground mask and its mean colour times ``colour_weight`` (size^2 + 3 values): with colour
spread over every pixel of a thumbnail, a k-means over them splits by colour first and by shape
only after.

With ``clip_frames`` > 1 a feature describes a clip, as an S3D feature does, instead of a frame:
windows of ``clip_frames`` frames every ``clip_stride`` (the last window ends at the last frame);
each is the mean of its frames' centred thumbnails, the change from its first frame to its last
(an object that grows or turns), and the object's displacement over the window times
``position_weight`` (2 * thumbnail + 2 values). Such a feature says what moves and how, so one
visual word can stand for "a square moving left"; absolute position, which means nothing, is left out.

``ThumbnailClips`` has the interface of :class:`~vtzoo.backbones.s3d.clips.S3DClips`: a path,
bytes or decoded frames in, ``(N, dim)`` features and a provenance record out; a float tensor
``(N, dim)`` is taken as features already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vtzoo.errors import ConfigError, InputError


@dataclass
class ThumbnailClips:
    fps: float = 8.0
    size: int = 16
    centre: bool = False
    position_weight: float = 8.0
    threshold: float = 0.3
    object_window: float = 1.0  # centre: the fraction of the frame kept around the object
    silhouette: bool = False  # centre: foreground mask + mean colour instead of the colour thumbnail
    colour_weight: float = 1.0  # silhouette: scale of the three colour values
    clip_frames: int = 1  # > 1 (with centre): one feature per window of frames, with its motion
    clip_stride: int = 0  # frames between windows (0: clip_frames, windows side by side)

    def __post_init__(self) -> None:
        if (self.clip_frames > 1 or self.silhouette or self.object_window != 1.0) and not self.centre:
            raise ConfigError("thumbnails: clip_frames, silhouette and object_window need centre: true")
        if self.clip_frames < 1 or self.clip_stride < 0 or not 0.0 < self.object_window <= 1.0:
            raise ConfigError("thumbnails: clip_frames must be >= 1, clip_stride >= 0, object_window in (0, 1]")

    @property
    def thumbnail_dim(self) -> int:
        return self.size * self.size + 3 if self.silhouette else 3 * self.size * self.size

    @property
    def dim(self) -> int:
        if self.clip_frames > 1:
            return 2 * self.thumbnail_dim + 2
        return self.thumbnail_dim + (2 if self.centre else 0)

    @property
    def stride(self) -> int:
        return self.clip_stride or self.clip_frames

    @property
    def extractor_id(self) -> str:
        centred = f"/centred(w={self.position_weight:g},t={self.threshold:g})" if self.centre else ""
        if self.object_window != 1.0:
            centred += f"/window{self.object_window:g}"
        if self.silhouette:
            centred += f"/silhouette(c={self.colour_weight:g})"
        clips = f"/clips{self.clip_frames}s{self.stride}" if self.clip_frames > 1 else ""
        return f"thumbnails/{self.size}px/{self.fps:g}fps{centred}{clips}"

    def __call__(self, video: Any, source: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """(N, dim) features of one video (one row per sampled frame, or per window with ``clip_frames``)
        and its provenance record (``timestamps``: each row's first frame)."""
        from vtzoo.video import Preprocess, load_video

        record = {"source": source, "backend": None, "fallback": None, "indices": None, "timestamps": None, "rotation": 0}
        if isinstance(video, torch.Tensor) and video.is_floating_point() and video.dim() == 2:
            if video.shape[1] != self.dim:
                raise InputError(f"clip features must be (N, {self.dim}), got {tuple(video.shape)}", source=source)
            return video.float(), record
        preprocess = None if self.centre else Preprocess(resize=[self.size, self.size])
        clip = load_video(video, fps=self.fps, preprocess=preprocess, source_fps=self.fps)
        frames = clip.frames[clip.mask.bool()]
        if self.centre:
            features = centred_thumbnails(frames, self.size, self.threshold, self.position_weight, self.object_window,
                                          self.colour_weight if self.silhouette else None)
            starts = list(clip.timestamps)
            if self.clip_frames > 1:
                features, first = motion_clips(features, self.clip_frames, self.stride)
                starts = [starts[i] for i in first]
        else:
            features, starts = frames.flatten(1).float(), list(clip.timestamps)
        if features.shape[1] != self.dim:  # a VideoClip decoded for another operator comes as it is
            raise InputError(f"thumbnails need frames of {self.size}x{self.size} px, got a clip of "
                             f"{tuple(clip.frames.shape[-2:])}: pass the video itself", source=source)
        record.update(backend=clip.backend, indices=list(clip.indices), timestamps=starts,
                      rotation=getattr(clip, "rotation", 0), clips=int(features.shape[0]))
        return features, record


def centred_thumbnails(frames: torch.Tensor, size: int, threshold: float, position_weight: float,
                       object_window: float = 1.0, colour_weight: float | None = None) -> torch.Tensor:
    """(T, 3, H, W) frames in [0, 1] -> (T, 3 * size^2 + 2): object-centred thumbnails + position.
    With ``colour_weight`` (silhouettes): (T, size^2 + 3 + 2), the foreground mask and the mean
    colour of the foreground times ``colour_weight``, then the position."""
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
    if object_window < 1.0:  # the object at a finer scale: only the window around it is shrunk
        keep_h, keep_w = max(1, round(height * object_window)), max(1, round(width * object_window))
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        shifted = shifted[..., top : top + keep_h, left : left + keep_w]
    if colour_weight is None:
        thumbs = F.interpolate(shifted, size=(size, size), mode="area").flatten(1)
    else:
        inside = (shifted.abs().sum(1, keepdim=True) > threshold).float()
        colour = (shifted * inside).sum((2, 3)) / inside.sum((2, 3)).clamp(min=1)
        thumbs = torch.cat([F.interpolate(inside, size=(size, size), mode="area").flatten(1), colour * colour_weight], 1)
    position = torch.stack([(cx + 0.5) / width - 0.5, (cy + 0.5) / height - 0.5], dim=1) * position_weight  # 0: the middle
    return torch.cat([thumbs, position], dim=1)


def motion_clips(frames: torch.Tensor, clip_frames: int, stride: int) -> tuple[torch.Tensor, list[int]]:
    """Per-frame centred features (T, D + 2: thumbnail, position) -> per-window features
    (N, 2 * D + 2): the window's mean thumbnail, its last minus its first thumbnail, and its last
    minus its first position; and each window's first frame. Windows of ``clip_frames`` start
    every ``stride`` frames, the last one ending at the last frame; a video shorter than one
    window is one window of all its frames."""
    count = frames.shape[0]
    starts = list(range(0, max(1, count - clip_frames + 1), stride))
    if starts[-1] + clip_frames < count:
        starts.append(count - clip_frames)
    thumbs, position = frames[:, :-2], frames[:, -2:]
    rows = []
    for start in starts:
        end = min(count, start + clip_frames) - 1
        rows.append(torch.cat([thumbs[start : end + 1].mean(0), thumbs[end] - thumbs[start], position[end] - position[start]]))
    return torch.stack(rows), starts
