"""Per-video expert feature sequences -> the padded tensors the video transformer reads.

Users hand over, per video, a mapping ``expert name -> ExpertSequence(features (n, dim),
timings (n, 2) [start, end] seconds or None)``. An expert that is absent (or ``None``) is a
missing expert: zero features, zero mask, so its [AGG] token is masked. Two collates exist
because the two originals build their inputs differently:

:func:`collate_mdmmt` (MDMMT's ``default_collate_fn``)
    times re-based per expert and video (``t - min(start)``), token time ``2 + midpoint``;
    the first ``max_tok`` segments are kept; padding and missing experts get time 0; an expert
    without timings gets time 1 for every token.
:func:`collate_mmt` (MMT's dataset, evaluation mode)
    no re-basing (``2 + midpoint``); the max- and mean-pool of ALL raw features are returned
    (the [AGG] inputs); when there are more than ``max_tok`` features, a deterministic subset
    (``RandomState(0).choice``, kept in time order) is used; padding and missing experts get 1.

Positions are later clamped to ``[0, max_position_embeddings - 1]`` and truncated to integers
by the model (so 2.5 s -> position 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from vtzoo.errors import InputError


@dataclass
class ExpertSequence:
    """One expert's features for one video: ``features`` (n, dim), ``timings`` (n, 2) or None."""

    features: Any
    timings: Any = None


@dataclass
class ExpertBatch:
    """Collated model inputs (dicts keyed by expert name, in the model's expert order)."""

    features: dict[str, torch.Tensor]  # (B, max_tok, dim) float32
    features_t: dict[str, torch.Tensor]  # (B, max_tok) float32 time values (before clamping)
    features_ind: dict[str, torch.Tensor]  # (B, max_tok) float32, 1 = valid token
    features_maxpool: dict[str, torch.Tensor] | None = None  # MMT: (B, dim)
    features_avgpool: dict[str, torch.Tensor] | None = None  # MMT: (B, dim)
    missing: list[list[str]] = field(default_factory=list)  # per video: missing experts

    def to(self, device: torch.device | str) -> "ExpertBatch":
        move = lambda d: None if d is None else {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return ExpertBatch(
            move(self.features), move(self.features_t), move(self.features_ind),
            move(self.features_maxpool), move(self.features_avgpool), self.missing,
        )


def _as_sequence(value: Any, name: str) -> ExpertSequence | None:
    if value is None:
        return None
    if isinstance(value, ExpertSequence):
        return value
    if isinstance(value, Mapping):
        return ExpertSequence(value["features"], value.get("timings"))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return ExpertSequence(value[0], value[1])
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return ExpertSequence(value, None)
    raise InputError(f"expert {name!r}: expected ExpertSequence, (features, timings) or a features array, got {type(value).__name__}")


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def validate_sequence(seq: ExpertSequence, name: str, dim: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Check one expert's features/timings; errors name the expert and what is expected."""
    feats = _to_numpy(seq.features)
    if feats.ndim != 2 or feats.shape[1] != dim:
        raise InputError(f"expert {name!r}: features must have shape (n, {dim}), got {tuple(feats.shape)}")
    if seq.timings is None:
        return feats, None
    times = _to_numpy(seq.timings).astype(np.float64)
    if times.shape != (feats.shape[0], 2):
        raise InputError(f"expert {name!r}: timings must have shape ({feats.shape[0]}, 2) [start, end], got {tuple(times.shape)}")
    if np.isnan(times).any():
        raise InputError(
            f"expert {name!r}: timings contain NaN; pass timings=None for an expert without timestamps"
        )
    if (times[:, 1] < times[:, 0]).any():
        raise InputError(f"expert {name!r}: a segment ends before it starts (timings are [start, end])")
    if (np.diff(times[:, 0]) < 0).any():
        raise InputError(f"expert {name!r}: segments are out of order (starts must not decrease)")
    return feats, times


def _videos_as_sequences(videos: Sequence[Mapping[str, Any]], experts: Sequence[Mapping[str, Any]]):
    known = {e["name"] for e in experts}
    out = []
    for i, video in enumerate(videos):
        unknown = sorted(set(video) - known)
        if unknown:
            raise InputError(f"video {i}: unknown expert(s) {unknown}; this model has {sorted(known)}")
        present = {}
        for e in experts:
            seq = _as_sequence(video.get(e["name"]), e["name"])
            if seq is not None:
                feats, times = validate_sequence(seq, e["name"], int(e["dim"]))
                if feats.shape[0] > 0:
                    present[e["name"]] = (feats, times)
        if not present:
            raise InputError(f"video {i}: every expert is missing; at least one expert needs features")
        out.append(present)
    return out


def collate_mdmmt(videos: Sequence[Mapping[str, Any]], experts: Sequence[Mapping[str, Any]]) -> ExpertBatch:
    """MDMMT's collate: re-based times, first ``max_tok`` segments kept, padding time 0."""
    batch = len(videos)
    seqs = _videos_as_sequences(videos, experts)
    feats_out, t_out, ind_out, missing = {}, {}, {}, [[] for _ in range(batch)]
    for e in experts:
        name, dim, max_tok = e["name"], int(e["dim"]), int(e["max_tok"])
        f = torch.zeros(batch, max_tok, dim)
        t = torch.zeros(batch, max_tok)
        m = torch.zeros(batch, max_tok)
        for b, present in enumerate(seqs):
            if name not in present:
                missing[b].append(name)
                continue
            feats, times = present[name]
            keep = min(len(feats), max_tok)
            if times is None:
                mid = np.ones(len(feats))
            else:
                times = times - times[:, 0].min()  # min over ALL segments, before truncation
                mid = 2 + (times[:, 1] + times[:, 0]) / 2
            f[b, :keep] = torch.from_numpy(np.ascontiguousarray(feats[:keep], dtype=np.float32))
            t[b, :keep] = torch.from_numpy(mid[:keep].astype(np.float32))
            m[b, :keep] = 1
        feats_out[name], t_out[name], ind_out[name] = f, t, m
    return ExpertBatch(feats_out, t_out, ind_out, missing=missing)


def choose_subset(n: int, keep: int) -> np.ndarray:
    """MMT's deterministic evaluation subset: ``RandomState(0).choice(n, keep)`` in time order."""
    return np.sort(np.random.RandomState(0).choice(n, size=keep, replace=False))


def collate_mmt(videos: Sequence[Mapping[str, Any]], experts: Sequence[Mapping[str, Any]]) -> ExpertBatch:
    """MMT's evaluation collate: times ``2 + midpoint``, pools over all features, padding time 1."""
    batch = len(videos)
    seqs = _videos_as_sequences(videos, experts)
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in ("f", "t", "m", "max", "avg")}
    missing: list[list[str]] = [[] for _ in range(batch)]
    for e in experts:
        name, dim, max_tok = e["name"], int(e["dim"]), int(e["max_tok"])
        f = np.zeros((batch, max_tok, dim))
        t = np.ones((batch, max_tok))
        m = np.zeros((batch, max_tok))
        mx = np.zeros((batch, dim))
        avg = np.zeros((batch, dim))
        for b, present in enumerate(seqs):
            if name not in present:
                missing[b].append(name)
                continue
            feats, times = present[name]
            # timings unknown (the original's feat_width None): [-1, -1] -> midpoint -1 -> 1
            mid = np.full(len(feats), -1.0) if times is None else times.mean(axis=1)
            mid = mid + 2
            mx[b], avg[b] = feats.max(axis=0), feats.mean(axis=0)
            keep = min(len(feats), max_tok)
            pick = choose_subset(len(feats), keep)
            f[b, :keep], t[b, :keep], m[b, :keep] = feats[pick], mid[pick], 1
        for key, arr in (("f", f), ("t", t), ("m", m), ("max", mx), ("avg", avg)):
            out[key][name] = torch.from_numpy(arr.astype(np.float32))
    return ExpertBatch(out["f"], out["t"], out["m"], out["max"], out["avg"], missing)


def collate(videos: Sequence[Mapping[str, Any]], experts: Sequence[Mapping[str, Any]], architecture: str) -> ExpertBatch:
    """Dispatch to :func:`collate_mdmmt` or :func:`collate_mmt`."""
    if architecture == "mmt":
        return collate_mmt(videos, experts)
    return collate_mdmmt(videos, experts)
