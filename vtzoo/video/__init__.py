"""Video input shared by every operator: decode only the sampled frames, then preprocess.

```python
from vtzoo.video import load_video, Preprocess
pre = Preprocess.from_card(card.preprocessing)
clip = load_video("a.mp4", num_frames=12, preprocess=pre)   # or fps=1.0, max_frames=12, pad=True
clip.frames, clip.mask, clip.indices, clip.backend          # (T, C, H, W), (T,), provenance
```
Backends: decord first, PyAV as the fallback (``backend="auto"``); see ``docs/video.md``.
"""

from vtzoo.video.arrays import ArrayBackend
from vtzoo.video.backends import (
    BACKEND_ENV_VAR,
    DecordBackend,
    PyAVBackend,
    VideoBackend,
    VideoInfo,
    available_backends,
    register_backend,
)
from vtzoo.video.discovery import Discovery, discover_videos
from vtzoo.video.errors import VideoDecodeError
from vtzoo.video.loader import VideoClip, frame_times, load_video, probe_video, sampling_from_card, stack_clips
from vtzoo.video.preprocess import Preprocess
from vtzoo.video.spec import VideoInputSpec

__all__ = [
    "ArrayBackend",
    "BACKEND_ENV_VAR",
    "DecordBackend",
    "Discovery",
    "Preprocess",
    "PyAVBackend",
    "VideoBackend",
    "VideoClip",
    "VideoDecodeError",
    "VideoInputSpec",
    "VideoInfo",
    "available_backends",
    "discover_videos",
    "frame_times",
    "load_video",
    "probe_video",
    "register_backend",
    "sampling_from_card",
    "stack_clips",
]
