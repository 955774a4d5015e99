"""Raw video -> per-expert feature sequences with timestamps, as MDMMT's feature dumper makes them.

Each extractor is callable on a video (path, bytes, or, for the visual experts, decoded frames)
and returns an :class:`~vtzoo.operators.mdmmt.collate.ExpertSequence` (features (n, dim) and
[start, end] timings in seconds, rounded to 2 decimals like the dumper's index files), or None
when the expert has nothing to say about the video (no audio track).

* :class:`ClipFrameExpert` (``CLIP``): OpenAI CLIP ViT-B/32 ``encode_image`` (projected, not
  normalised) on frames at 1 fps, short side 228, centre crop 228. The stride-32 patch conv of a
  224-input ViT reads only the first 224 rows/columns of a 228 crop, so those are what the shared
  CLIP towers get. Timings [k, k + 1].
* :class:`VggishExpert` (``tf_vggish``): the audio track at its own rate and channel count,
  through a 16-bit round trip (the original decodes to a 16-bit WAV), VGGish's front end and
  network, final ReLU, no PCA. Timings [0.96 k, 0.96 k + 0.96].
* :class:`IrCsnExpert` (``VIDEO``): irCSN-152 pooled features of non-overlapping 32-frame clips
  at 32 fps (short side 224, centre crop 224); a short last clip is filled by resampling the
  leftover frames to 32. Timings [k, k + 1].

Known differences from the original pipeline: frames are decoded and resized by vtzoo's video
module (decord/PyAV, PIL bicubic) instead of ffmpeg's filters, and CLIP runs in float32 where the
original ran CLIP's fp16 GPU model; so features agree closely but not bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vtzoo.operators.mdmmt.collate import ExpertSequence
from vtzoo.operators.mdmmt.experts import audio
from vtzoo.operators.mdmmt.experts.ircsn import MEAN as KINETICS_MEAN
from vtzoo.operators.mdmmt.experts.ircsn import STD as KINETICS_STD
from vtzoo.operators.mdmmt.experts.ircsn import IrCsnModel
from vtzoo.operators.mdmmt.experts.vggish import VggishModel


def _timings(starts: np.ndarray, width: float) -> np.ndarray:
    # the dumper writes "%.2f" timings; the dataset reads them back
    return np.round(np.stack([starts, starts + width], axis=1), 2)


def _is_decoded(source: Any) -> bool:
    return isinstance(source, (np.ndarray, torch.Tensor))


@dataclass
class ClipFrameExpert:
    """CLIP image features of 1 fps frames (MDMMT's ``CLIP`` expert)."""

    towers: Any  # vtzoo.backbones.clip.CLIPTowers
    name: str = "CLIP"
    fps: float = 1.0
    size: int = 228
    batch_size: int = 64
    source_fps: float | None = None  # frame rate of decoded-frame input
    device: str | torch.device = "cpu"

    @property
    def dim(self) -> int:
        return int(self.towers.sizes.embed_dim)

    def preprocess(self):
        from vtzoo.backbones.clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
        from vtzoo.video import Preprocess

        return Preprocess(resize=self.size, crop=self.size, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, interpolation="bicubic")

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Preprocessed (T, 3, size, size) frames -> (T, D) projected, unnormalised CLIP features."""
        sizes = self.towers.sizes
        usable = (frames.shape[-1] // sizes.vision_patch_size) * sizes.vision_patch_size
        if usable != sizes.image_resolution:
            raise ValueError(
                f"CLIP expert: a {frames.shape[-1]}px crop gives {usable}px of patches, the ViT expects {sizes.image_resolution}"
            )
        # the patch conv never reads the pixels past the last full patch: drop them up front
        frames = frames[..., :usable, :usable]
        outs = []
        with torch.inference_mode():
            for start in range(0, frames.shape[0], self.batch_size):
                chunk = frames[start : start + self.batch_size].to(self.device)
                outs.append(self.towers.encode_image(chunk).float().cpu())
        return torch.cat(outs) if outs else torch.zeros(0, self.dim)

    def __call__(self, source: Any) -> ExpertSequence | None:
        from vtzoo.video import load_video

        kwargs = {"source_fps": self.source_fps} if _is_decoded(source) else {}
        clip = load_video(source, fps=self.fps, preprocess=self.preprocess(), **kwargs)
        feats = self.encode_frames(clip.frames[clip.mask.bool()])
        starts = np.arange(feats.shape[0], dtype=np.float64) / self.fps
        return ExpertSequence(feats.numpy(), _timings(starts, 1.0 / self.fps))


@dataclass
class VggishExpert:
    """VGGish embeddings of 0.96 s audio windows (MDMMT's ``tf_vggish`` expert)."""

    model: VggishModel
    name: str = "tf_vggish"
    batch_size: int = 64
    quantize_16bit: bool = True
    device: str | torch.device = "cpu"

    @property
    def dim(self) -> int:
        return int(self.model.config.embedding_size)

    def embed_waveform(self, waveform: np.ndarray, sample_rate: int) -> ExpertSequence:
        """(samples[, channels]) waveform in [-1, 1] -> one 128-d vector per 0.96 s.

        Raises :class:`~vtzoo.operators.mdmmt.experts.audio.AudioTooShort` below 0.96 s.
        """
        wave = np.asarray(waveform, dtype=np.float64)
        if self.quantize_16bit:
            wave = np.clip(np.round(wave * 32768.0), -32768, 32767) / 32768.0
        examples = audio.waveform_to_examples(wave, int(sample_rate))
        outs = []
        with torch.inference_mode():
            for start in range(0, examples.shape[0], self.batch_size):
                outs.append(self.model(examples[start : start + self.batch_size].to(self.device)).float().cpu())
        feats = torch.cat(outs).numpy()
        starts = np.arange(feats.shape[0], dtype=np.float64) * audio.EXAMPLE_SECONDS
        return ExpertSequence(feats, _timings(starts, audio.EXAMPLE_SECONDS))

    def __call__(self, source: Any) -> ExpertSequence | None:
        """A video (path/bytes) or a ``(waveform, sample_rate)`` pair; None without an audio track."""
        if isinstance(source, tuple) and len(source) == 2:
            return self.embed_waveform(*source)
        if _is_decoded(source):
            return None  # decoded frames carry no audio
        decoded = audio.load_audio(source)
        if decoded is None:
            return None
        return self.embed_waveform(*decoded)


@dataclass
class IrCsnExpert:
    """irCSN-152 features of 1 s clips of 32 frames (MDMMT's ``VIDEO`` expert)."""

    model: IrCsnModel
    name: str = "VIDEO"
    fps: float = 32.0
    size: int = 224
    frames_per_clip: int = 32
    clips_per_batch: int = 2
    window_seconds: float = 8.0  # decode this much video at a time (memory bound)
    source_fps: float | None = None
    device: str | torch.device = "cpu"

    @property
    def dim(self) -> int:
        return 2048

    def preprocess(self):
        from vtzoo.video import Preprocess

        return Preprocess(resize=self.size, crop=self.size, mean=KINETICS_MEAN, std=KINETICS_STD, interpolation="bicubic")

    def clip_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) frames -> (clips, 3, frames_per_clip, H, W); a short tail is resampled."""
        n, per = frames.shape[0], self.frames_per_clip
        full = (n // per) * per
        parts = [frames[:full]]
        if n > full:
            # the original stretches the leftover frames to a whole clip: ceil(linspace(n1, n-1, 32))
            idx = np.ceil(np.linspace(full, n - 1, per)).astype(np.int64)
            parts.append(frames[torch.from_numpy(idx)])
        clips = torch.cat(parts).reshape(-1, per, *frames.shape[1:])
        return clips.permute(0, 2, 1, 3, 4)

    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        outs = []
        with torch.inference_mode():
            for start in range(0, clips.shape[0], self.clips_per_batch):
                outs.append(self.model.features(clips[start : start + self.clips_per_batch].to(self.device)).float().cpu())
        return torch.cat(outs) if outs else torch.zeros(0, self.dim)

    def _decode(self, source: Any) -> torch.Tensor:
        from vtzoo.video import load_video, probe_video

        pre = self.preprocess()
        if _is_decoded(source):
            return load_video(source, fps=self.fps, preprocess=pre, source_fps=self.source_fps).frames
        duration = probe_video(source).duration
        # windows a whole number of clips long keep every clip inside one window
        step = max(1, round(self.window_seconds * self.fps / self.frames_per_clip)) * self.frames_per_clip / self.fps
        windows = max(1, math.ceil(duration / step - 1e-9))
        chunks = []
        for k in range(windows):
            start, end = k * step, min((k + 1) * step, duration)
            if end <= start:
                break
            chunks.append(load_video(source, fps=self.fps, start=start, end=end, preprocess=pre).frames)
        return torch.cat(chunks)

    def __call__(self, source: Any) -> ExpertSequence | None:
        frames = self._decode(source)
        if frames.shape[0] == 0:
            return None
        feats = self.encode_clips(self.clip_frames(frames))
        seconds = self.frames_per_clip / self.fps
        starts = np.arange(feats.shape[0], dtype=np.float64) * seconds
        return ExpertSequence(feats.numpy(), _timings(starts, seconds))


def run_experts(experts: dict[str, Any], source: Any) -> dict[str, ExpertSequence]:
    """Every expert on one video; a missing audio track (or too short a one) leaves it out."""
    out: dict[str, ExpertSequence] = {}
    for name, expert in experts.items():
        try:
            seq = expert(source)
        except audio.AudioTooShort as exc:
            warnings.warn(f"expert {name!r}: {exc}; treated as a missing expert", stacklevel=3)
            seq = None
        if seq is not None and len(seq.features) > 0:
            out[name] = seq
    return out
