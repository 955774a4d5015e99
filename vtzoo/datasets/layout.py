"""The vtzoo dataset layout (DESIGN "Datasets"): a folder anyone can write by hand.

```
videos/          the video files (names in the annotation files are paths relative to it)
captions.json    {"<file name>": ["caption", ...]}                          retrieval
captions.csv     video,caption (one row per caption), in place of captions.json
labels.json      {"<file name>": "label"}                                   classification (optional)
segments.json    {"<file name>": [{"start": s, "end": e, "text": "..."}]}   events (optional)
splits.json      {"train": [...], "val": [...], "test": [...]}              (optional)
```
Without splits.json every video goes to the split :func:`~vtzoo.datasets.base.hash_split` gives
its name. Without a ``videos/`` folder the names are relative to the dataset folder itself.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from vtzoo.datasets.base import (
    SPLITS,
    DatasetError,
    Segment,
    VideoItem,
    VideoTextDataset,
    expect,
    hash_split,
    read_json,
)
from vtzoo.errors import did_you_mean

ANNOTATION_FILES = ("captions.json", "captions.csv", "labels.json", "segments.json")


def is_vtzoo_layout(root: Path) -> bool:
    return any((root / name).is_file() for name in ANNOTATION_FILES)


def read_captions(root: Path) -> dict[str, list[str]]:
    json_file, csv_file = root / "captions.json", root / "captions.csv"
    if json_file.is_file():
        data = read_json(json_file)
        expect(isinstance(data, dict), json_file, "(top level)", "expected an object {\"<file name>\": [captions]}")
        captions = {}
        for name, value in data.items():
            value = [value] if isinstance(value, str) else value
            expect(isinstance(value, list) and all(isinstance(c, str) and c.strip() for c in value),
                   json_file, repr(name), "captions must be a non-empty string or a list of non-empty strings")
            captions[name] = value
        return captions
    if csv_file.is_file():
        captions: dict[str, list[str]] = {}
        with csv_file.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"video", "caption"} <= set(reader.fieldnames):
                raise DatasetError(f"{csv_file}: needs the columns 'video' and 'caption' (got {reader.fieldnames})")
            for row_number, row in enumerate(reader, start=2):
                expect(bool(row["video"]) and bool((row["caption"] or "").strip()), csv_file, f"line {row_number}",
                       "empty video or caption")
                captions.setdefault(row["video"], []).append(row["caption"])
        return captions
    return {}


def read_labels(root: Path) -> dict[str, str]:
    path = root / "labels.json"
    if not path.is_file():
        return {}
    data = read_json(path)
    expect(isinstance(data, dict), path, "(top level)", "expected an object {\"<file name>\": \"label\"}")
    for name, label in data.items():
        expect(isinstance(label, (str, int)) and not isinstance(label, bool) and str(label) != "", path, repr(name),
               "the label must be a non-empty string")
    return {name: str(label) for name, label in data.items()}


def read_segments(root: Path) -> dict[str, list[Segment]]:
    path = root / "segments.json"
    if not path.is_file():
        return {}
    data = read_json(path)
    expect(isinstance(data, dict), path, "(top level)", "expected an object {\"<file name>\": [segments]}")
    segments = {}
    for name, items in data.items():
        expect(isinstance(items, list), path, repr(name), "expected a list of {start, end, text}")
        parsed = []
        for i, seg in enumerate(items):
            where = f"{name!r}[{i}]"
            expect(isinstance(seg, dict) and {"start", "end", "text"} <= set(seg), path, where,
                   "a segment needs 'start', 'end' (seconds) and 'text'")
            start, end = seg["start"], seg["end"]
            expect(all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end))
                   and 0 <= start <= end, path, where, f"needs 0 <= start <= end in seconds (got {start}, {end})")
            expect(isinstance(seg["text"], str), path, where, "'text' must be a string")
            parsed.append(Segment(float(start), float(end), seg["text"]))
        segments[name] = parsed
    return segments


def read_splits(root: Path, names: list[str]) -> dict[str, list[str]]:
    path = root / "splits.json"
    if not path.is_file():
        splits: dict[str, list[str]] = {s: [] for s in SPLITS}
        for name in names:
            splits[hash_split(name)].append(name)
        return splits
    data = read_json(path)
    expect(isinstance(data, dict), path, "(top level)", "expected an object {\"train\": [...], \"val\": [...], \"test\": [...]}")
    known, seen = set(names), {}
    for split, members in data.items():
        if split not in SPLITS:
            raise DatasetError(f"{path}: entry {split!r}: unknown split.{did_you_mean(split, SPLITS)} "
                               f"Splits are {', '.join(SPLITS)}")
        expect(isinstance(members, list) and all(isinstance(m, str) for m in members), path, repr(split),
               "expected a list of video file names")
        for i, member in enumerate(members):
            expect(member in known, path, f"{split!r}[{i}]",
                   f"{member!r} has no captions, label or segments{did_you_mean(member, known, 0.8)}")
            expect(seen.setdefault(member, split) == split, path, f"{split!r}[{i}]",
                   f"{member!r} is also in the {seen[member]!r} split")
    return {s: list(data.get(s, [])) for s in SPLITS}


def read_vtzoo_layout(root: str | Path) -> VideoTextDataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a directory")
    if not is_vtzoo_layout(root):
        raise DatasetError(f"dataset {root}: no captions.json, captions.csv, labels.json or segments.json")
    captions, labels, segments = read_captions(root), read_labels(root), read_segments(root)
    names = list(dict.fromkeys([*captions, *labels, *segments]))
    splits = read_splits(root, names)
    videos_dir = root / "videos" if (root / "videos").is_dir() else root
    items, missing, problems = [], [], []
    for name in names:
        path = videos_dir / name
        if not path.is_file():
            missing.append(name)
            source = "captions" if name in captions else "labels" if name in labels else "segments"
            problems.append(f"{root / (source + '.json')}: entry {name!r}: no such video in {videos_dir} (skipped)")
            continue
        items.append(VideoItem(name, path, captions.get(name, []), labels.get(name), segments.get(name, [])))
    if not items:
        raise DatasetError(f"dataset {root}: none of the {len(names)} annotated videos is in {videos_dir}")
    present = {item.name for item in items}
    kept = {split: [n for n in members if n in present] for split, members in splits.items()}
    return VideoTextDataset(root, "vtzoo", items, kept, missing, problems)
