"""The ``movinet`` operator: Kinetics-600 classification and clip embeddings with MoViNets A0-A5.

Base variants classify a whole clip. Stream variants do the same, and also run on a video
piece by piece with an explicit state (no hidden buffers)::

    op = vtzoo.create("movinet/a0-stream", weights=...)
    state = op.init_state(batch_size=1)
    for chunk in chunks:                       # (B, 3, T, H, W) in [0, 1], any T >= 1
        logits, state = op.step(chunk, state)

``stream_classify`` turns a frame iterator (a long file, a camera) into one label list per
window in constant memory.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from vtzoo.errors import ConfigError
from vtzoo.operators.base import (
    VIDEO_CLASSIFICATION,
    VIDEO_EMBEDDING,
    Embeddings,
    Operator,
    VideoInput,
    input_provenance,
    video_items,
)
from vtzoo.operators.movinet.model import MovinetInputError, MovinetModel, StreamState
from vtzoo.registry.operators import register_operator
from vtzoo.video import VideoClip, VideoInputSpec

LABELS_FILE = "kinetics600_labels.txt"


@lru_cache(maxsize=1)
def kinetics600_labels() -> tuple[str, ...]:
    """The 600 Kinetics-600 class names; line i of the shipped file is logit i (source: its README)."""
    text = resources.files("vtzoo.operators.movinet").joinpath(LABELS_FILE).read_text(encoding="utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != 600:
        raise RuntimeError(f"{LABELS_FILE} should hold 600 labels, found {len(labels)}")
    return labels


@register_operator("movinet")
class MovinetOperator(Operator):
    """MoViNet A0-A5 (base and stream) for Kinetics-600 classification and clip embeddings."""

    summary = "MoViNet A0-A5, base and streaming with explicit state (Kondratyuk et al. 2021)"
    tasks = frozenset({VIDEO_EMBEDDING, VIDEO_CLASSIFICATION})
    default_variant = "a0-base"
    model_class = MovinetModel
    default_batch_size = 8  # clips of the same length per forward pass
    # a pipeline flat_map step: frames of one video in, one (start, end, labels) row per window out
    pipeline_methods = ("stream_classify",)

    # -- facts ----------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        if self.config.num_classes == 600:
            return kinetics600_labels()
        return tuple(f"class_{i}" for i in range(self.config.num_classes))

    @property
    def resolution(self) -> int:
        return int(self.preprocessing.get("crop", 172))

    # -- input preparation ----------------------------------------------------------------
    @property
    def video_input(self) -> VideoInputSpec:
        """The card's sampling (``fps``, at most ``frames``) and resize/crop, RGB in [0, 1]; never
        padded: padded frames would enter the temporal averages."""
        return VideoInputSpec.from_card(self.preprocessing).replace(pad=False)

    def load_clip(self, source: Any, start: float | None = None, end: float | None = None) -> VideoClip:
        """A path or bytes, sampled as the card says; decoded frames (numpy (T, H, W, C) / torch
        (T, C, H, W)) are taken as given (every frame), resized and cropped."""
        from vtzoo.video import load_video
        from vtzoo.video.arrays import is_decoded_frames

        if is_decoded_frames(source):
            return load_video(source, indices=range(source.shape[0]), preprocess=self.video_input.preprocess)
        return super().load_clip(source, start, end)

    def _prepared(self, videos: VideoInput | Sequence[VideoInput]) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
        """Model-ready (3, T, H, W) clips with their provenance. A 5-D tensor is a batch of clips
        already prepared; a ``VideoClip`` is used without its padded frames."""
        if isinstance(videos, torch.Tensor) and videos.dim() == 5:
            videos = [videos]
        clips, provenance = [], []
        for item in video_items(videos):
            if isinstance(item, torch.Tensor) and item.dim() == 5:
                clips.extend(item.float())
                provenance.extend(input_provenance("<tensor>", item.shape[0]))
                continue
            clip = self.load_clip(item)
            frames, record = self._long_enough(clip.frames[clip.mask.bool()], clip.provenance())
            clips.append(frames.permute(1, 0, 2, 3).contiguous())
            provenance.append(record)
        for clip, record in zip(clips, provenance):
            try:
                self.model.check_clip(clip.unsqueeze(0))
            except MovinetInputError as exc:
                raise exc.with_source(record["source"]) from None
        return clips, provenance

    def _long_enough(self, frames: torch.Tensor, record: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """A decoded clip shorter than the base network's temporal kernel is looped to that length,
        as the original video input pipeline loops short videos (a 1-frame video is not lost)."""
        needed = 1 if self.config.causal else self.config.max_temporal_kernel
        if 0 < frames.shape[0] < needed:
            record = {**record, "looped": f"{frames.shape[0]} frame(s) repeated in order to {needed}"}
            frames = frames[torch.arange(needed) % frames.shape[0]]
        return frames, record

    def _run(self, videos) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        clips, provenance = self._prepared(videos)
        rows = self.map_by_shape(self.model.forward_pooled, clips)
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]), provenance

    # -- tasks ----------------------------------------------------------------------------
    def embed_video(self, videos: VideoInput | Sequence[VideoInput]) -> Embeddings:
        """Pooled features before the classifier (the conv7 output averaged over the clip),
        unnormalised; ``extras["logits"]`` carries the Kinetics-600 logits computed on the way."""
        logits, pooled, provenance = self._run(videos)
        return Embeddings(pooled=pooled, extras={"logits": logits, "provenance": provenance})

    def classify(self, videos: VideoInput | Sequence[VideoInput], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k Kinetics-600 labels with softmax probabilities, one list per video."""
        return self.top_labels(self._run(videos)[0], top_k)

    def top_labels(self, logits: torch.Tensor, top_k: int = 5) -> list[list[tuple[str, float]]]:
        probs = torch.softmax(logits.float(), dim=-1)
        values, indices = probs.topk(min(int(top_k), probs.shape[-1]), dim=-1)
        names = self.labels
        return [[(names[i], float(v)) for v, i in zip(row_v.tolist(), row_i.tolist())] for row_v, row_i in zip(values, indices)]

    # -- streaming ------------------------------------------------------------------------
    def init_state(self, batch_size: int = 1, height: int | None = None, width: int | None = None) -> StreamState:
        """A fresh stream state for ``batch_size`` clips of ``height``×``width`` frames (default:
        the card's resolution). Stream variants only."""
        size = self.resolution
        return self.model.init_state(batch_size, height or size, width or size)

    def step(self, frames_chunk: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Logits at the last frame of ``frames_chunk`` (B, 3, T, H, W, [0, 1]) given every frame
        since ``state`` was made, and the next state. Chunks of any length give the same result
        as the whole clip at once."""
        with self.compute():
            logits, _, new_state = self.model.step(frames_chunk.to(self.device, torch.float32), state)
        return logits.float().cpu(), new_state

    def stream_classify(
        self,
        frames: Iterable[Any],
        window: int,
        top_k: int = 5,
        *,
        frame_step: int = 1,
        chunk_size: int = 8,
    ) -> Iterator[tuple[int, int, list[tuple[str, float]]]]:
        """Classify a frame source window by window in constant memory.

        ``frames`` yields single frames: numpy (H, W, 3) uint8, torch (3, H, W) / (H, W, 3), or
        ``av.VideoFrame``. Every ``frame_step``-th frame is used (e.g. 5 on a 25 fps source gives
        the 5 fps the A0-A2 models were evaluated at). Yields ``(window_start, window_end, labels)``
        per window of ``window`` source frames, ``[start, end)`` in source frame numbers; a last,
        shorter window is reported too. Each window is classified on its own: stream variants
        start a fresh state per window and feed ``chunk_size`` frames at a time; base variants
        keep one window of frames.
        """
        if window < 1 or frame_step < 1 or chunk_size < 1:
            raise ConfigError(f"stream_classify: window, frame_step and chunk_size must be >= 1, got "
                              f"{window}, {frame_step}, {chunk_size}")
        preprocess = self.video_input.preprocess
        causal = self.config.causal
        state: StreamState | None = None
        pending: list[torch.Tensor] = []
        logits: torch.Tensor | None = None
        start = index = 0

        def flush() -> None:
            nonlocal state, logits, pending
            if not pending or not causal:
                return
            chunk = torch.stack(pending, dim=1).unsqueeze(0)  # (1, 3, T, H, W)
            if state is None:
                state = self.init_state(1, chunk.shape[-2], chunk.shape[-1])
            logits, state = self.step(chunk, state)
            pending = []

        def finish(end: int):
            nonlocal state, logits, pending
            flush()
            if not causal and pending:
                clip = torch.stack(pending, dim=1).unsqueeze(0)
                if clip.shape[2] >= self.config.max_temporal_kernel:
                    logits = self._run(clip)[0]
            result = None if logits is None else (start, end, self.top_labels(logits, top_k)[0])
            state, logits, pending = None, None, []
            return result

        for index, frame in enumerate(frames):
            if index - start >= window:
                result = finish(index)
                if result is not None:
                    yield result
                start = index
            if (index - start) % frame_step == 0:
                pending.append(preprocess(_frame_tensor(frame))[0])
                if causal and len(pending) >= chunk_size:
                    flush()
        else:
            if index >= start:
                result = finish(index + 1)
                if result is not None:
                    yield result

    # -- benchmarks and conformance ---------------------------------------------------------
    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> torch.Tensor:
        """A (B, 3, T, S, S) clip in [0, 1] at the variant's resolution (default T: the card's frames)."""
        frames = int(num_frames or self.preprocessing.get("frames", 50))
        size = self.resolution
        gen = torch.Generator().manual_seed(0)
        return torch.rand((batch_size, 3, frames, size, size), generator=gen)

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        # The published block tables have no width knob and the networks are small (0.9-15 M
        # parameters without the head): keep the card's architecture, shrink the head and the input.
        return {"hidden_dim": 16, "preprocessing": {"frames": 8, "resize": 36, "crop": 32}}


def _frame_tensor(frame: Any) -> torch.Tensor:
    """One decoded frame -> (1, 3, H, W) uint8/float, validated like any decoded clip."""
    from vtzoo.video.arrays import as_tchw

    if hasattr(frame, "to_ndarray"):  # av.VideoFrame
        frame = frame.to_ndarray(format="rgb24")
    if isinstance(frame, np.ndarray):
        if frame.ndim == 2:
            frame = frame[:, :, None]
        return as_tchw(frame[None])
    if isinstance(frame, torch.Tensor):
        if frame.dim() == 2:
            frame = frame[None]
        return as_tchw(frame[None])
    raise MovinetInputError(f"stream_classify takes frames as numpy, torch or av.VideoFrame, got {type(frame).__name__}")
