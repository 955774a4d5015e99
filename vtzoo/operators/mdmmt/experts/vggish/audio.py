"""VGGish's audio front end: waveform -> 0.96 s log-mel examples (N, 1, 96, 64).

Same numbers as the reference VGGish input pipeline (``vggish_input.waveform_to_examples``):
channel mean, resampling to 16 kHz with resampy's ``kaiser_best`` filter, 25 ms frames with a
10 ms hop (no padding), periodic Hann window, magnitude of a 512-point rFFT, 64 HTK-mel bands
(125-7500 Hz, DC bin zeroed), ``log(mel + 0.01)``, non-overlapping 96-frame examples. All in
float64, cast to float32 at the end. torchaudio/librosa defaults differ on most of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vtzoo.errors import InputError, VtzooError

SAMPLE_RATE = 16000
WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_SECONDS = 0.96
EXAMPLE_FRAMES = 96

# resampy 0.4.x ``kaiser_best``: 50 zero crossings, 2**13 taps per crossing, Kaiser window.
# rolloff is the value stored in resampy's filter table; beta was fitted to that table
# (its half window is reproduced to 2e-15).
KAISER_BEST = {"num_zeros": 50, "precision": 8192, "rolloff": 0.9173473712608761, "beta": 12.984585247041458}


class AudioTooShort(InputError):
    """Audio shorter than one VGGish example (0.96 s)."""


# -- resampling -------------------------------------------------------------------------------
_FILTER_CACHE: dict[str, tuple[np.ndarray, int]] = {}


def kaiser_best_filter() -> tuple[np.ndarray, int]:
    """Right half of resampy's ``kaiser_best`` windowed-sinc table and its taps per crossing."""
    if "kaiser_best" not in _FILTER_CACHE:
        from scipy.special import i0

        p = KAISER_BEST
        n = p["precision"] * p["num_zeros"]
        position = np.linspace(0, p["num_zeros"], num=n + 1, endpoint=True)
        sinc = p["rolloff"] * np.sinc(p["rolloff"] * position)
        # right half of scipy.signal.windows.kaiser(2n + 1, beta), computed directly
        taper = i0(p["beta"] * np.sqrt(1.0 - (np.arange(n + 1) / n) ** 2)) / i0(p["beta"])
        _FILTER_CACHE["kaiser_best"] = (taper * sinc, p["precision"])
    return _FILTER_CACHE["kaiser_best"]


@dataclass
class _Filter:
    window: np.ndarray  # right half of the interpolation filter (scaled when downsampling)
    delta: np.ndarray  # window[i + 1] - window[i]: linear interpolation between table entries
    num_table: int
    scale: float
    step: int


def _filter_for(ratio: float) -> _Filter:
    window, num_table = kaiser_best_filter()
    if ratio < 1:
        window = ratio * window
    scale = min(1.0, ratio)
    return _Filter(window, np.diff(window, append=window[-1]), num_table, scale, int(scale * num_table))


def _wing_weights(f: _Filter, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tap weights (outputs, taps) of one filter wing and each output's tap count (no edge cut)."""
    index = frac * f.num_table
    offset = index.astype(np.int64)
    eta = index - offset
    count = (f.window.shape[0] - offset) // f.step
    taps = np.arange(int(count.max()) if len(count) else 0)
    valid = taps[None] < count[:, None]
    fidx = np.where(valid, offset[:, None] + taps[None] * f.step, 0)
    return np.where(valid, f.window[fidx] + eta[:, None] * f.delta[fidx], 0.0), count


def resample_direct(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """resampy's loop, vectorised over outputs: every output computes its own tap weights."""
    x = np.asarray(x, dtype=np.float64)
    ratio = float(rate_out) / rate_in
    n_out = int(x.shape[0] * float(rate_out) / float(rate_in))
    f = _filter_for(ratio)
    xpad_len = x.shape[0]
    y = np.zeros(n_out)
    t_out = np.arange(n_out) * (1.0 / ratio)
    for start in range(0, n_out, 4096):  # chunks keep the (outputs x taps) tables small
        t = t_out[start : start + 4096]
        n = t.astype(np.int64)
        frac = f.scale * (t - n)
        left, _ = _wing_weights(f, frac)
        right, _ = _wing_weights(f, f.scale - frac)
        li = n[:, None] - np.arange(left.shape[1])[None]
        ri = n[:, None] + 1 + np.arange(right.shape[1])[None]
        # taps that fall outside the signal are skipped by the original (= zero samples)
        xl = np.where((li >= 0) & (li < xpad_len), x[np.clip(li, 0, xpad_len - 1)], 0.0)
        xr = np.where((ri >= 0) & (ri < xpad_len), x[np.clip(ri, 0, xpad_len - 1)], 0.0)
        y[start : start + 4096] = (left * xl).sum(1) + (right * xr).sum(1)
    return y


def resample_polyphase(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Same filter, computed once per phase: outputs ``p + jL`` share their tap weights.

    With ``L/M = rate_out/rate_in`` in lowest terms, output ``p + jL`` sits at input position
    ``n_p + jM`` with the same fractional offset as output ``p``. Agrees with
    :func:`resample_direct` to float64 rounding (~1e-13).
    """
    from math import gcd

    x = np.asarray(x, dtype=np.float64)
    g = gcd(int(rate_in), int(rate_out))
    outputs, inputs = int(rate_out) // g, int(rate_in) // g
    ratio = float(rate_out) / rate_in
    n_out = int(x.shape[0] * float(rate_out) / float(rate_in))
    f = _filter_for(ratio)
    t = np.arange(min(outputs, n_out)) * (1.0 / ratio)
    n = t.astype(np.int64)
    frac = f.scale * (t - n)
    left, _ = _wing_weights(f, frac)
    right, _ = _wing_weights(f, f.scale - frac)
    before, after = left.shape[1], right.shape[1] + 1
    # one kernel per phase over input offsets -(before-1) .. after-1 relative to n_p
    kernel = np.concatenate([left[:, ::-1], right], axis=1)
    padded = np.concatenate([np.zeros(before), x, np.zeros(after + inputs)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])
    y = np.zeros(n_out)
    for p in range(len(t)):
        count = len(range(p, n_out, outputs))
        # window index = n_p + j*M + 1 (the pad shifts sample i to i + before; the kernel starts before-1 early)
        rows = windows[n[p] + 1 : n[p] + 1 + count * inputs : inputs]
        y[p::outputs] = rows @ kernel[p]
    return y


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited sinc resampling, numerically resampy's ``resample(x, rate_in, rate_out)``
    (filter ``kaiser_best``). Output length is ``int(n * rate_out / rate_in)``.

    resampy itself is used when installed; otherwise this reimplementation (polyphase for
    integer rates) reproduces it to ~1e-13.
    """
    if rate_in == rate_out:
        return np.array(x, copy=True)
    n_out = int(np.shape(x)[0] * float(rate_out) / float(rate_in))
    if n_out < 1:
        raise AudioTooShort(f"audio of {np.shape(x)[0]} samples is too short to resample from {rate_in} to {rate_out} Hz")
    try:  # the reference implementation, when available
        import resampy

        return resampy.resample(np.asarray(x, dtype=np.float64), rate_in, rate_out, filter="kaiser_best")
    except ImportError:
        pass
    if float(rate_in).is_integer() and float(rate_out).is_integer():
        return resample_polyphase(x, int(rate_in), int(rate_out))
    return resample_direct(x, rate_in, rate_out)


# -- log-mel ----------------------------------------------------------------------------------
def frame(data: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Non-padded frames along axis 0 (an incomplete last frame is dropped)."""
    count = 1 + int(math.floor((data.shape[0] - window) / hop))
    if count < 1:
        return np.zeros((0, window, *data.shape[1:]), dtype=data.dtype)
    index = np.arange(window)[None, :] + hop * np.arange(count)[:, None]
    return data[index]


def hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale (natural log form)."""
    return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)


def mel_matrix(num_spectrogram_bins: int = 257, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(bins, 64) triangular HTK-mel weights built in the mel domain; the DC bin weighs 0."""
    bins_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins))
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), NUM_MEL_BINS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def log_mel_spectrogram(mono_16k: np.ndarray) -> np.ndarray:
    """(frames, 64) natural-log mel magnitudes of a 16 kHz mono waveform."""
    window_len = int(round(SAMPLE_RATE * WINDOW_SECONDS))
    hop_len = int(round(SAMPLE_RATE * HOP_SECONDS))
    fft_len = 2 ** int(math.ceil(math.log(window_len) / math.log(2.0)))
    frames = frame(np.asarray(mono_16k, dtype=np.float64), window_len, hop_len)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / window_len * np.arange(window_len))  # periodic
    magnitude = np.abs(np.fft.rfft(frames * hann, int(fft_len)))
    return np.log(magnitude @ mel_matrix(fft_len // 2 + 1) + LOG_OFFSET)


def to_mono(data: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) channel mean."""
    data = np.asarray(data, dtype=np.float64)
    return data.mean(axis=1) if data.ndim > 1 else data


def waveform_to_examples(data: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Waveform (samples[, channels]) in [-1, 1] -> float32 (N, 1, 96, 64) log-mel examples.

    Raises :class:`AudioTooShort` when not even one 0.96 s example fits.
    """
    mono = to_mono(data)
    if sample_rate != SAMPLE_RATE:
        mono = resample(mono, sample_rate, SAMPLE_RATE)
    log_mel = log_mel_spectrogram(mono)
    examples = frame(log_mel, EXAMPLE_FRAMES, EXAMPLE_FRAMES)
    if examples.shape[0] == 0:
        seconds = len(mono) / SAMPLE_RATE
        raise AudioTooShort(f"audio of {seconds:.3f} s is shorter than one VGGish window ({EXAMPLE_SECONDS} s)")
    return torch.from_numpy(examples.astype(np.float32))[:, None]


# -- decoding ---------------------------------------------------------------------------------
def load_audio(source: Any) -> tuple[np.ndarray, int] | None:
    """Decode a video's audio track -> (float64 (samples, channels) in [-1, 1], native rate).

    Returns None when the file has no audio track (a missing expert). See :func:`decode_audio`.
    """
    decoded = decode_audio(source)
    return None if decoded is None else decoded[:2]


def decode_audio(source: Any) -> tuple[np.ndarray, int, str] | None:
    """(samples, native rate, the backend that decoded them), or None without an audio track.

    The samples are the decoder's own, at the stream's rate and channel count, as the original's
    ffmpeg WAV decode. PyAV is tried first: decord's AudioReader (the fallback) was seen to
    scramble the channels of 2- and 6-channel AAC and, on repeated reads of the same file, to
    return garbage values (~1e19) in the decord build this was written against; it is used for
    sources PyAV cannot open.
    """
    try:
        return (*_load_pyav(source), "pyav")
    except _NoAudio:
        return None
    except Exception as first:  # PyAV missing or unable to read this container
        try:
            return (*_load_decord(source), "decord")
        except _NoAudio:
            return None
        except Exception as exc:
            raise InputError(f"cannot decode its audio track: PyAV: {first}; decord: {exc}",
                             source if isinstance(source, str) else "<bytes>") from None


class _NoAudio(Exception):
    pass


def _native_rate(source: Any) -> int:
    """The audio stream's own sample rate (decord only reports the rate it was asked for)."""
    import io

    import av

    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        if not container.streams.audio:
            raise _NoAudio()
        return int(container.streams.audio[0].rate)


def _load_decord(source: Any) -> tuple[np.ndarray, int]:
    import io

    import decord

    rate = _native_rate(source)
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        reader = decord.AudioReader(handle, sample_rate=rate, mono=False)
    except decord.DECORDError as exc:
        if "audio stream" in str(exc).lower():
            raise _NoAudio() from None
        raise
    data = reader[:].asnumpy()
    if data.size == 0:
        raise _NoAudio()
    if not np.isfinite(data).all() or np.abs(data).max() > 4.0:
        raise VtzooError("decord returned out-of-range audio samples")  # seen with its AAC decoding
    return data.T.astype(np.float64), rate  # decord gives (channels, samples)


def _load_pyav(source: Any) -> tuple[np.ndarray, int]:
    import io

    import av

    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        streams = container.streams.audio
        if not streams:
            raise _NoAudio()
        stream = streams[0]
        chunks, rate = [], stream.rate
        for packet_frame in container.decode(stream):
            arr = packet_frame.to_ndarray()
            if packet_frame.format.is_planar:
                arr = arr.T
            else:
                arr = arr.reshape(-1, len(packet_frame.layout.channels))  # interleaved samples
            if arr.dtype.kind == "i":  # integer PCM -> [-1, 1)
                arr = arr / float(np.iinfo(arr.dtype).max + 1)
            chunks.append(arr.astype(np.float64))
    if not chunks:
        raise _NoAudio()
    return np.concatenate(chunks), int(rate)
