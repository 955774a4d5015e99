"""The ``vggish`` operator: a video's sound track -> one 128-d VGGish embedding per 0.96 s.

MDMMT's ``tf_vggish`` expert (and MMT's ``vggish``): the audio track at its own rate and channel
count, through a 16-bit round trip (the original decodes to a 16-bit WAV), VGGish's front end
(mono, 16 kHz, 64-band log-mel, 0.96 s windows) and network, final ReLU, no PCA. A video without
an audio track has nothing to say (a zero row, an all-zero mask); decoded frames carry no audio.
``embed_video`` also takes ``(waveform, sample_rate)`` pairs, ``waveform`` (samples[, channels]) in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vtzoo.operators.base import OperatorOptions, input_provenance, item_source
from vtzoo.operators.mdmmt.collate import ExpertSequence
from vtzoo.operators.mdmmt.experts.expert import (
    ExpertOperator,
    is_decoded,
    segment_timings,
)
from vtzoo.operators.mdmmt.experts.vggish import audio
from vtzoo.operators.mdmmt.experts.vggish.model import VggishModel
from vtzoo.registry.operators import register_operator


@dataclass
class VggishOptions(OperatorOptions):
    """``quantize_16bit``: round the audio to 16-bit samples first, as MDMMT's WAV decode does."""

    quantize_16bit: bool = True


@register_operator("vggish")
class VggishOperator(ExpertOperator):
    summary = "VGGish audio embeddings of a video's sound track (Hershey et al. 2017), MDMMT's audio expert"
    default_variant = "audioset"
    model_class = VggishModel
    options_class = VggishOptions

    @property
    def dim(self) -> int:
        return int(self.config.embedding_size)

    def embed_waveform(self, waveform: np.ndarray, sample_rate: int) -> ExpertSequence:
        """(samples[, channels]) waveform in [-1, 1] -> one embedding per 0.96 s.

        Raises :class:`~vtzoo.operators.mdmmt.experts.vggish.audio.AudioTooShort` below 0.96 s.
        """
        wave = np.asarray(waveform, dtype=np.float64)
        if self.options.quantize_16bit:
            wave = np.clip(np.round(wave * 32768.0), -32768, 32767) / 32768.0
        feats = self._encode(self.model, audio.waveform_to_examples(wave, int(sample_rate))).numpy()
        return ExpertSequence(feats, segment_timings(feats.shape[0], audio.EXAMPLE_SECONDS))

    def extract(self, video: Any) -> tuple[ExpertSequence | None, dict[str, Any]]:
        """A video (path/bytes) or a ``(waveform, sample_rate)`` pair; None without an audio track."""
        if isinstance(video, tuple) and len(video) == 2:
            return self.embed_waveform(*video), input_provenance("<waveform>")[0]
        record = input_provenance(item_source(video))[0]
        if is_decoded(video) or _is_clip(video):
            return None, record  # decoded frames carry no audio
        decoded = audio.decode_audio(video)
        if decoded is None:
            return None, record
        waveform, rate, backend = decoded
        return self.embed_waveform(waveform, rate), {**record, "backend": backend, "sample_rate": rate}

    def example_video_input(self, batch_size: int, num_frames: int | None = None) -> list[Any]:
        """10 s of 16 kHz noise per item."""
        rng = np.random.RandomState(0)
        return [(rng.uniform(-0.5, 0.5, 160000), 16000) for _ in range(batch_size)]

    @classmethod
    def tiny_config(cls, card) -> dict[str, Any]:
        """VGGish's layout with 8..32 conv channels and 64-wide hidden layers."""
        return {"conv_channels": (8, 16, 16, 32), "hidden_size": 64}


def _is_clip(video: Any) -> bool:
    from vtzoo.video import VideoClip

    return isinstance(video, VideoClip)
