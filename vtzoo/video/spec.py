"""What an operator needs from a video: its sampling rule and its frame preprocessing.

An operator owns its input (``op.video_input``): a pipeline's ``video.decode`` step asks the
embedding step's operator for it, so a spec names its model once, and an operator refuses a clip
that was decoded for another one instead of silently reading mis-sized frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from vtzoo.errors import InputError
from vtzoo.video.loader import VideoClip, load_video, sampling_from_card
from vtzoo.video.preprocess import Preprocess

# load_video keywords a sampling rule may hold
SAMPLING_KEYS = ("num_frames", "fps", "max_frames", "sampling", "pad")


@dataclass(frozen=True)
class VideoInputSpec:
    """``sampling``: ``load_video`` keywords (``num_frames`` or ``fps``/``max_frames``/``pad``,
    ``sampling``); ``preprocess``: resize/crop/normalise (None: float frames in [0, 1]);
    ``decode_at_size``: the decoder scales frames to the first resize (``load_video``)."""

    sampling: Mapping[str, Any] = field(default_factory=dict)
    preprocess: Preprocess | None = None
    decode_at_size: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sampling) - set(SAMPLING_KEYS))
        if unknown:
            raise ValueError(f"unknown sampling field(s) {unknown}; known: {', '.join(SAMPLING_KEYS)}")

    @classmethod
    def from_card(cls, preprocessing: Mapping[str, Any], frames: int | None = None, **preprocess: Any) -> "VideoInputSpec":
        """A card's ``preprocessing`` (frames/fps/sampling + resize/crop/mean/std). ``frames``
        (e.g. the model's ``max_frames``) and ``preprocess`` fields override the card's."""
        values = {**dict(preprocessing), **preprocess}
        if frames is not None:
            values["frames"] = frames
        return cls(sampling=sampling_from_card(values), preprocess=Preprocess.from_card(values))

    def replace(self, **changes: Any) -> "VideoInputSpec":
        """A copy with other sampling fields (a frame count replaces a rate, and back) or preprocess."""
        given = {k: v for k, v in changes.items() if k in SAMPLING_KEYS}
        sampling = dict(self.sampling)
        if "num_frames" in given:
            for key in ("fps", "max_frames", "pad"):
                sampling.pop(key, None)
        if "fps" in given:
            sampling.pop("num_frames", None)
        sampling.update(given)
        preprocess = changes.get("preprocess", self.preprocess)
        decode_at_size = bool(changes.get("decode_at_size", self.decode_at_size))
        return VideoInputSpec(sampling=sampling, preprocess=preprocess, decode_at_size=decode_at_size)

    @property
    def frames(self) -> int | None:
        """The most frames one clip holds under this rule (None: as many as the video has)."""
        return self.sampling.get("num_frames") or self.sampling.get("max_frames")

    def load(self, source: Any, *, start: float | None = None, end: float | None = None,
             backend: str | None = None) -> VideoClip:
        """Decode and preprocess ``source`` (a path, bytes, decoded frames) for this operator."""
        if isinstance(source, VideoClip):
            return source
        return load_video(source, start=start, end=end, backend=backend, preprocess=self.preprocess,
                          decode_at_size=self.decode_at_size, **dict(self.sampling))

    def check(self, clip: VideoClip, operator: str) -> VideoClip:
        """``clip`` unchanged if it was preprocessed the way this spec says; else an InputError."""
        expected = None if self.preprocess is None else dataclasses.asdict(self.preprocess)
        if _normalised(clip.preprocess) != _normalised(expected):
            raise InputError(
                f"this clip was decoded for another operator (preprocess {_short(clip.preprocess)}); "
                f"{operator} needs {_short(expected)}: decode it with {operator}'s input spec "
                f"(a pipeline's video.decode step with for: <that step>)",
                source=clip.source,
            )
        return clip


def _normalised(record: Mapping[str, Any] | None) -> Any:
    if record is None:
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}


def _short(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "raw frames"
    keys = ("resize", "crop", "resize_after_crop", "mean")
    return ", ".join(f"{k}={record.get(k)}" for k in keys if record.get(k) is not None) or "no resize"
