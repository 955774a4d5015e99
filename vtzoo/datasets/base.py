"""What every dataset reader returns: videos with their captions, label, segments and split.

A reader turns a folder as it was downloaded (the vtzoo layout, or a release's own files) into a
:class:`VideoTextDataset`. Readers check the annotation files before any work starts: a malformed
file or entry is a :class:`DatasetError` naming the file and the entry. A caption for a video file
that is not there is skipped and counted (``missing``), with one line per video in ``problems``:
partial downloads are the rule for web datasets, and one missing file must not lose the others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vtzoo.errors import InputError

SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")
# the hash split used when a dataset has no splits file: fractions of train, val (test = rest)
HASH_SPLIT = (0.7, 0.1)


class DatasetError(InputError):
    """A dataset folder or annotation file that cannot be read (names the file and the entry)."""


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class VideoItem:
    """One video (or, with ``start``/``end``, a window of one) and what is known about it."""

    name: str  # the video's key in the annotations (a file name in the vtzoo layout)
    path: Path
    captions: list[str] = field(default_factory=list)
    label: str | None = None
    segments: list[Segment] = field(default_factory=list)
    start: float | None = None
    end: float | None = None

    @property
    def key(self) -> str:
        """Unique per item, also for several windows of one video."""
        if self.start is None and self.end is None:
            return self.name
        return f"{self.name}[{self.start}:{self.end}]"


@dataclass
class VideoTextDataset:
    """Items and which split each belongs to. ``missing``: annotated videos whose file is absent."""

    root: Path
    format: str
    items: list[VideoItem]
    splits: dict[str, list[str]]  # split -> item keys
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_key = {item.key: item for item in self.items}

    def split(self, name: str) -> list[VideoItem]:
        if name not in self.splits:
            raise DatasetError(f"dataset {self.root} has no split {name!r} (it has {', '.join(self.splits)})")
        return [self._by_key[key] for key in self.splits[name] if key in self._by_key]

    @property
    def labels(self) -> list[str]:
        """The label vocabulary (sorted), over every split."""
        return sorted({item.label for item in self.items if item.label is not None})

    def segment_items(self, split: str) -> list[VideoItem]:
        """Every annotated segment of ``split`` as an item of its own (a window with one caption)."""
        out = []
        for item in self.split(split):
            for seg in item.segments:
                out.append(VideoItem(item.name, item.path, [seg.text], item.label, [], seg.start, seg.end))
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "videos": {split: len(keys) for split, keys in self.splits.items()},
            "captions": sum(len(item.captions) for item in self.items),
            "labels": len(self.labels),
            "missing_videos": len(self.missing),
        }


# -- helpers the readers share ------------------------------------------------------------------
def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def expect(condition: bool, path: Path, entry: str, message: str) -> None:
    if not condition:
        raise DatasetError(f"{path}: entry {entry}: {message}")


def hash_split(name: str) -> str:
    """The split of a video without a splits file: a hash of its name, the same everywhere."""
    value = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64
    train, val = HASH_SPLIT
    return "train" if value < train else "val" if value < train + val else "test"


def index_videos(folders: Iterable[Path]) -> dict[str, Path]:
    """Video files under ``folders`` (recursively), by file name and by stem (first found wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                found.setdefault(path.name, path)
                found.setdefault(path.stem, path)
    return found


class ItemCollector:
    """Builds the items of a release: looks each video up, counts the missing ones."""

    def __init__(self, root: Path, videos: dict[str, Path], source: Path):
        self.root, self.videos, self.source = root, videos, source
        self.items: dict[str, VideoItem] = {}
        self.missing: list[str] = []
        self._missing: set[str] = set()
        self.problems: list[str] = []

    def get(self, name: str, *candidates: str) -> VideoItem | None:
        """The item of video ``name`` (created on first use), or None when no file matches."""
        if name in self.items:
            return self.items[name]
        if name in self._missing:
            return None
        path = next((self.videos[c] for c in (name, *candidates) if c in self.videos), None)
        if path is None:
            self._missing.add(name)
            self.missing.append(name)
            self.problems.append(f"{self.source}: video {name!r} is not in {self.root} (skipped)")
            return None
        self.items[name] = VideoItem(name, path)
        return self.items[name]

    def dataset(self, format: str, splits: dict[str, list[str]]) -> VideoTextDataset:
        kept = {split: [k for k in dict.fromkeys(keys) if k in self.items] for split, keys in splits.items()}
        if not self.items:
            raise DatasetError(f"dataset {self.root} ({format}): none of the annotated videos was found "
                               f"(first missing: {', '.join(self.missing[:3]) or 'none annotated'})")
        return VideoTextDataset(self.root, format, list(self.items.values()), kept, self.missing, self.problems)
