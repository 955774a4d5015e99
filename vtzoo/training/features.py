"""Precomputed video features for the feature-level families (COOT, VideoCLIP, MDMMT/MMT).

Those models read per-time-step features, not pixels: the originals extract them once (S3D on
HowTo100M, expert networks) and train on the stored arrays. Here a recipe's ``family.features``
names the extractor; every item's features are computed once, before the first epoch, into one
safetensors file per video under ``$VTZOO_CACHE/features/<extractor fingerprint>/`` (``features``
(T, D), ``times`` (T, 2) in seconds, ``duration``), and every epoch reads them back in the
DataLoader workers. A file that changed (size, mtime) is extracted again.

Extractors:

* ``s3d``: :class:`~vtzoo.backbones.s3d.features.S3DFeatureExtractor`, one feature per window of
  ``window_frames`` frames at ``fps`` (VideoCLIP's MMPT extraction with the defaults); ``weights``
  is the S3D checkpoint (``s3d_howto100m.pth``) or ``"random"`` (seeded by ``seed``).
* ``thumbnails``: every frame sampled at ``fps``, shrunk to ``size`` x ``size`` RGB in [0, 1] and
  flattened (3 * size^2 values): parameter-free features, for runs without any pretrained network;
  with ``centre``, object-centred thumbnails plus the object's position
  (:mod:`vtzoo.backbones.thumbnails`).
* ``operator``: the operator's own extraction (e.g. COOT's overlapping S3D windows), as the family
  defines it; the fingerprint then includes ``key`` (what identifies the operator's extractor).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors.torch import load_file, save_file

from vtzoo.errors import ConfigError, VtzooError

EXTRACTORS = ("s3d", "thumbnails", "operator")
# options added after the first caches were written: left out of the fingerprint at their defaults
LATER_THUMBNAIL_OPTIONS = ("object_window", "silhouette", "colour_weight", "clip_frames", "clip_stride")


@dataclass
class FeatureSpec:
    extractor: str = "s3d"
    fps: float = 30.0
    window_frames: int = 30  # s3d: frames per feature
    resize: int = 224  # s3d: shorter side, then a centre crop of ``crop``
    crop: int = 224
    output: str = "video_embedding"  # s3d: or mixed_5c (1024-d)
    l2_normalize: bool = True
    weights: str = "random"  # s3d: checkpoint file or "random"
    seed: int = 0
    size: int = 16  # thumbnails: side in pixels
    centre: bool = False  # thumbnails: object-centred, with the position appended (vtzoo.backbones.thumbnails)
    position_weight: float = 8.0  # thumbnails with centre: scale of the two position values
    threshold: float = 0.3  # thumbnails with centre: foreground = this far from the border colour
    object_window: float = 1.0  # thumbnails with centre: the fraction of the frame kept around the object
    silhouette: bool = False  # thumbnails with centre: foreground mask + mean colour
    colour_weight: float = 1.0  # thumbnails with silhouette: scale of the colour values
    clip_frames: int = 1  # thumbnails with centre: frames per clip feature (with its motion)
    clip_stride: int = 0  # thumbnails with clip_frames: frames between clips (0: clip_frames)
    key: str = ""  # operator: identifies the operator's extractor (set by the family)

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ConfigError(f"family.features.extractor {self.extractor!r} is not one of {', '.join(EXTRACTORS)}")

    @property
    def dim(self) -> int:
        if self.extractor == "thumbnails":
            return self.thumbnails().dim
        return 1024 if self.output == "mixed_5c" else 512

    def thumbnails(self):
        from vtzoo.backbones.thumbnails import ThumbnailClips

        return ThumbnailClips(**{f.name: getattr(self, f.name) for f in fields(ThumbnailClips)})

    def fingerprint(self) -> str:
        values = asdict(self)
        if not self.centre:  # the fields of centred thumbnails leave other extractions' caches where they were
            for name in ("centre", "position_weight", "threshold"):
                values.pop(name)
        defaults = {f.name: f.default for f in fields(FeatureSpec)}
        for name in LATER_THUMBNAIL_OPTIONS:  # likewise the later options, at their defaults
            if values[name] == defaults[name]:
                values.pop(name)
        if self.extractor == "s3d" and self.weights != "random":
            values["weights"] = _file_identity(Path(self.weights))
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class Extractor:
    """Turns one item into ``{"features": (T, D), "times": (T, 2), "duration": ()}``."""

    def __init__(self, spec: FeatureSpec, operator_extract: Callable[[Any], torch.Tensor] | None = None):
        self.spec, self.operator_extract = spec, operator_extract
        self._s3d = None

    def __call__(self, item: Any) -> dict[str, torch.Tensor]:
        from vtzoo.video import probe_video

        spec = self.spec
        duration = float(probe_video(item.path).duration)
        if spec.extractor == "operator":
            if self.operator_extract is None:
                raise ConfigError("family.features.extractor 'operator': this family has no extractor of its own")
            features = self.operator_extract(item)
            step = duration / max(1, features.shape[0])
            starts = torch.arange(features.shape[0], dtype=torch.float32) * step
            times = torch.stack([starts, starts + step], 1)
        elif spec.extractor == "thumbnails":
            features, record = spec.thumbnails()(str(item.path), str(item.path))
            starts = torch.tensor(record["timestamps"], dtype=torch.float32)
            times = torch.stack([starts, starts + spec.clip_frames / spec.fps], 1)
        else:
            features = self.s3d(str(item.path)).features
            seconds = spec.window_frames / spec.fps
            starts = torch.arange(features.shape[0], dtype=torch.float32) * seconds
            times = torch.stack([starts, starts + seconds], 1)
        return {"features": features.float().contiguous(), "times": times, "duration": torch.tensor(duration)}

    @property
    def s3d(self):
        if self._s3d is None:
            from vtzoo.backbones.s3d import S3D, S3DConfig, convert_original_state_dict
            from vtzoo.backbones.s3d.features import S3DFeatureExtractor, S3DWindowing
            from vtzoo.registry.weights import load_state_dict_strict, read_state_dict

            spec = self.spec
            torch.manual_seed(spec.seed)
            model = S3D(S3DConfig())
            if spec.weights != "random":
                load_state_dict_strict(model, convert_original_state_dict(read_state_dict(spec.weights)), spec.weights)
            windowing = S3DWindowing(fps=spec.fps, window_frames=spec.window_frames, resize=spec.resize, crop=spec.crop,
                                     output=spec.output, l2_normalize=spec.l2_normalize)
            self._s3d = S3DFeatureExtractor(model.eval(), windowing, warn_truncation=False)
        return self._s3d


def cache_root() -> Path:
    from vtzoo.folder_search import default_cache_dir

    return default_cache_dir() / "features"


class TensorStore:
    """Tensors computed once per key, one safetensors file each, under a folder named by what
    computed them (``name``: an extractor fingerprint)."""

    def __init__(self, name: str, root: Path | None = None):
        self.folder = (root or cache_root()) / name

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    def get(self, key: str, what: str) -> dict[str, torch.Tensor]:
        path = self.path(key)
        if not path.is_file():
            raise VtzooError(f"{what}: no cached features (their extraction failed or did not run)")
        return load_file(str(path))

    def fill(self, jobs: dict[str, Any], compute: Callable[[Any], dict[str, torch.Tensor]], desc: str,
             progress: bool = True) -> dict[str, str]:
        """Compute ``compute(value)`` for every ``{key: value}`` not stored yet; ``{key: reason}`` of failures."""
        from tqdm.auto import tqdm

        todo = {k: v for k, v in jobs.items() if not self.path(k).is_file()}
        failures: dict[str, str] = {}
        if todo:
            self.folder.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode():
            for key, value in tqdm(todo.items(), desc=desc, disable=not progress or not todo, file=sys.stderr):
                try:
                    tensors = compute(value)
                except (VtzooError, OSError, ValueError, RuntimeError) as exc:
                    failures[key] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    continue
                target = self.path(key)
                tmp = target.with_suffix(f".{os.getpid()}.tmp")
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
                os.replace(tmp, target)
        return failures


class FeatureStore(TensorStore):
    """Video features per video file (windows of one video share them; families cut the window)."""

    def __init__(self, spec: FeatureSpec, root: Path | None = None):
        super().__init__(f"{spec.extractor}-{spec.fingerprint()}", root)
        self.spec = spec

    @staticmethod
    def item_key(item: Any) -> str:
        return _file_identity(Path(item.path))

    def features(self, item: Any) -> dict[str, torch.Tensor]:
        return self.get(self.item_key(item), str(item.path))

    def fill_items(self, items: Sequence[Any], operator_extract: Callable | None = None,
                   progress: bool = True) -> dict[str, str]:
        """Extract every item not cached yet; returns ``{item key: reason}`` for those that failed."""
        by_key: dict[str, Any] = {}
        for item in items:
            by_key.setdefault(self.item_key(item), item)
        extractor = Extractor(self.spec, operator_extract)
        failed = self.fill(by_key, extractor, f"{self.spec.extractor} features", progress)
        return {item.key: failed[self.item_key(item)] for item in items if self.item_key(item) in failed}


class FeatureFamily:
    """Mixin for families trained on cached features: their ``Settings`` have ``features``
    (a :class:`FeatureSpec`); ``prepare`` extracts every split's features before the first epoch."""

    def operator_features(self, op: Any, item: Any) -> torch.Tensor:
        raise ConfigError(f"{type(self).__name__} has no extractor of its own: use s3d or thumbnails features")

    def prepare(self, run: Any) -> None:
        from vtzoo.training.data import Failed

        items = {i.key: i for i in [*run.train_items, *run.val_items, *run.test_items]}
        store = FeatureStore(run.base_settings.features)
        failed = store.fill_items(list(items.values()), lambda item: self.operator_features(run.op, item),
                                  progress=run.args.progress)
        run.note_failures([Failed(key, reason) for key, reason in failed.items()])

    @staticmethod
    def video_features(settings: Any, item: Any) -> dict[str, torch.Tensor]:
        """The item's stored features; for a window (``start``/``end``), the steps inside it."""
        stored = FeatureStore(settings.features).features(item)
        if item.start is None and item.end is None:
            return stored
        return window(stored, item.start or 0.0, item.end if item.end is not None else float(stored["duration"]))


def window(stored: dict[str, torch.Tensor], start: float, end: float) -> dict[str, torch.Tensor]:
    """The steps whose time span overlaps [start, end) (at least the nearest one)."""
    times = stored["times"]
    keep = (times[:, 1] > start) & (times[:, 0] < end)
    if not bool(keep.any()):
        keep = torch.zeros_like(keep)
        keep[int(((times[:, 0] + times[:, 1]) / 2 - start).abs().argmin())] = True
    return {"features": stored["features"][keep], "times": times[keep] - start,
            "duration": torch.tensor(float(end - start))}
