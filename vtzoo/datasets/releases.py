"""Readers for datasets in the layout their authors release them in.

Each reader takes the folder the annotation files were unpacked in; videos are looked up by file
name or stem anywhere below it (``videos/``, ``MSRVTT/videos/all/``, ``raw_videos/training/101/``,
...). Where a release has no separate validation split, its test split validates too (as the
original training scripts do); where it has no labelled test split, validation is the test.

==================  ======================================================  ===========================
reader              files                                                    splits
==================  ======================================================  ===========================
``msrvtt``          ``MSRVTT_data.json`` (sentences), ``MSRVTT_train.9k.csv``  train 9k, val = test = 1k-A
                    (video_id), ``MSRVTT_JSFUSION_test.csv`` (1k-A: video_id,
                    sentence)
``didemo``          ``{train,val,test}_data.json`` (video, description,       train / val / test; the
                    times in 5 s units)                                      descriptions of a video
                                                                             form its paragraph
``youcook2``        ``youcookii_annotations_trainval.json`` (database: subset, train = training,
                    annotations [segment, sentence])                         val = test = validation
``activitynet``     ``train.json``, ``val_1.json``, ``val_2.json``            train / val_1 / val_2
                    (timestamps, sentences)                                  (val_1 when no val_2)
``webvid``          ``results_*_train.csv`` / ``results_*_val.csv`` (videoid, train / val = test
                    page_dir, name)
``kinetics``        ``train.csv``, ``validate.csv``, ``test.csv`` (label,     train / validate / test
                    youtube_id, time_start, time_end)                        (validate if test has no labels)
==================  ======================================================  ===========================
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

from vtzoo.datasets.base import DatasetError, ItemCollector, Segment, VideoTextDataset, expect, index_videos, read_json

DIDEMO_SEGMENT_SECONDS = 5.0


def _rows(path: Path, required: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))} (has {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            yield line, row


def _paragraph_items(collector: ItemCollector, name: str, sentences: list[str], times: list[tuple[float, float]],
                     candidates: tuple[str, ...] = ()) -> str | None:
    """An item whose caption is the paragraph of its sentences and whose segments are the events."""
    item = collector.get(name, *candidates)
    if item is None:
        return None
    item.captions = [" ".join(s.strip() for s in sentences)]
    item.segments = [Segment(float(min(s, e)), float(max(s, e)), text) for (s, e), text in zip(times, sentences)]
    return name


# -- MSR-VTT ------------------------------------------------------------------------------------
def read_msrvtt(root: Path) -> VideoTextDataset:
    data_file, train_file, test_file = root / "MSRVTT_data.json", root / "MSRVTT_train.9k.csv", root / "MSRVTT_JSFUSION_test.csv"
    for required in (data_file, train_file, test_file):
        if not required.is_file():
            raise DatasetError(f"MSR-VTT at {root}: {required.name} is missing")
    data = read_json(data_file)
    expect(isinstance(data, dict) and isinstance(data.get("sentences"), list), data_file, "'sentences'",
           "expected a list of {video_id, caption}")
    collector = ItemCollector(root, index_videos([root]), data_file)
    train_ids = [row["video_id"] for _, row in _rows(train_file, {"video_id"})]
    wanted = set(train_ids)
    for i, sentence in enumerate(data["sentences"]):
        expect(isinstance(sentence, dict) and {"video_id", "caption"} <= set(sentence), data_file,
               f"'sentences'[{i}]", "needs 'video_id' and 'caption'")
        if sentence["video_id"] in wanted:
            item = collector.get(sentence["video_id"])
            if item is not None:
                item.captions.append(sentence["caption"])
    test_ids = []
    collector.source = test_file
    for line, row in _rows(test_file, {"video_id", "sentence"}):
        item = collector.get(row["video_id"])
        if item is not None:
            item.captions = [row["sentence"]]  # 1k-A: one sentence per test video
            test_ids.append(row["video_id"])
    return collector.dataset("msrvtt", {"train": train_ids, "val": test_ids, "test": test_ids})


# -- DiDeMo -------------------------------------------------------------------------------------
def _didemo_time(votes: list) -> tuple[float, float]:
    """The annotators' most common (first, last) 5-second segment -> seconds."""
    first, last = Counter(tuple(v) for v in votes).most_common(1)[0][0]
    return first * DIDEMO_SEGMENT_SECONDS, (last + 1) * DIDEMO_SEGMENT_SECONDS


def read_didemo(root: Path) -> VideoTextDataset:
    collector = ItemCollector(root, index_videos([root]), root)
    splits = {}
    for split in ("train", "val", "test"):
        path = root / f"{split}_data.json"
        if not path.is_file():
            raise DatasetError(f"DiDeMo at {root}: {path.name} is missing")
        entries = read_json(path)
        expect(isinstance(entries, list), path, "(top level)", "expected a list of annotations")
        by_video: dict[str, list[tuple[str, tuple[float, float]]]] = {}
        for i, entry in enumerate(entries):
            expect(isinstance(entry, dict) and {"video", "description", "times"} <= set(entry)
                   and isinstance(entry["times"], list) and entry["times"], path, f"[{i}]",
                   "needs 'video', 'description' and 'times'")
            by_video.setdefault(entry["video"], []).append((entry["description"], _didemo_time(entry["times"])))
        collector.source = path
        keys = []
        for video, entries in by_video.items():
            entries.sort(key=lambda a: a[1])
            sentences, times = [a[0] for a in entries], [a[1] for a in entries]
            key = _paragraph_items(collector, video, sentences, times, (Path(video).stem,))
            if key is not None:
                keys.append(key)
        splits[split] = keys
    return collector.dataset("didemo", splits)


# -- YouCook2 -----------------------------------------------------------------------------------
def read_youcook2(root: Path) -> VideoTextDataset:
    path = root / "youcookii_annotations_trainval.json"
    data = read_json(path)
    expect(isinstance(data, dict) and isinstance(data.get("database"), dict), path, "'database'",
           "expected an object of videos")
    collector = ItemCollector(root, index_videos([root]), path)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for video, entry in data["database"].items():
        where = f"'database'.{video!r}"
        expect(isinstance(entry, dict) and entry.get("subset") in ("training", "validation", "testing")
               and isinstance(entry.get("annotations"), list), path, where, "needs 'subset' and 'annotations'")
        if entry["subset"] == "testing":  # released without annotations
            continue
        for j, ann in enumerate(entry["annotations"]):
            expect(isinstance(ann, dict) and "sentence" in ann and len(ann.get("segment", [])) == 2, path,
                   f"{where}.annotations[{j}]", "needs 'segment' [start, end] and 'sentence'")
        sentences = [a["sentence"] for a in entry["annotations"]]
        times = [tuple(a["segment"]) for a in entry["annotations"]]
        if sentences and _paragraph_items(collector, video, sentences, times) is not None:
            splits["train" if entry["subset"] == "training" else "val"].append(video)
    return collector.dataset("youcook2", {"train": splits["train"], "val": splits["val"], "test": splits["val"]})


# -- ActivityNet Captions -----------------------------------------------------------------------
def read_activitynet(root: Path) -> VideoTextDataset:
    collector = ItemCollector(root, index_videos([root]), root)
    splits = {}
    for split, file in (("train", "train.json"), ("val", "val_1.json"), ("test", "val_2.json")):
        path = root / file
        if not path.is_file():
            if split == "test":
                splits["test"] = splits["val"]
                break
            raise DatasetError(f"ActivityNet Captions at {root}: {file} is missing")
        data = read_json(path)
        expect(isinstance(data, dict), path, "(top level)", "expected an object of videos")
        collector.source = path
        keys = []
        for video, entry in data.items():
            expect(isinstance(entry, dict) and isinstance(entry.get("sentences"), list)
                   and isinstance(entry.get("timestamps"), list)
                   and len(entry["sentences"]) == len(entry["timestamps"]), path, repr(video),
                   "needs 'sentences' and as many 'timestamps'")
            # the release names videos v_<youtube id>; downloads are often saved without the prefix
            key = _paragraph_items(collector, video, entry["sentences"], [tuple(t) for t in entry["timestamps"]],
                                   (video[2:] if video.startswith("v_") else f"v_{video}",))
            if key is not None:
                keys.append(key)
        splits[split] = keys
    return collector.dataset("activitynet", splits)


# -- WebVid -------------------------------------------------------------------------------------
def read_webvid(root: Path) -> VideoTextDataset:
    files = {split: sorted(root.glob(f"results_*_{split}.csv")) for split in ("train", "val")}
    if not files["train"] and not files["val"]:
        raise DatasetError(f"WebVid at {root}: no results_*_train.csv or results_*_val.csv")
    collector = ItemCollector(root, index_videos([root]), root)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for split, paths in files.items():
        for path in paths:
            collector.source = path
            for line, row in _rows(path, {"videoid", "name"}):
                name = f"{row.get('page_dir') or ''}/{row['videoid']}".lstrip("/")
                item = collector.get(name, row["videoid"])
                if item is not None:
                    item.captions.append(row["name"])
                    splits[split].append(name)
    return collector.dataset("webvid", {"train": splits["train"], "val": splits["val"], "test": splits["val"]})


# -- Kinetics -----------------------------------------------------------------------------------
def read_kinetics(root: Path) -> VideoTextDataset:
    collector = ItemCollector(root, index_videos([root]), root)
    splits: dict[str, list[str]] = {}
    for split, file in (("train", "train.csv"), ("val", "validate.csv"), ("test", "test.csv")):
        path = root / file
        if not path.is_file() and split == "val":
            path = root / "val.csv"
        if not path.is_file():
            continue
        collector.source = path
        keys = []
        for line, row in _rows(path, {"youtube_id", "time_start", "time_end"}):
            label = (row.get("label") or "").strip()
            if not label:  # an unlabelled test split: nothing to train or score on
                continue
            clip = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
            item = collector.get(clip, row["youtube_id"])
            if item is not None:
                item.label = label
                keys.append(clip)
        splits[split] = keys
    if "train" not in splits:
        raise DatasetError(f"Kinetics at {root}: train.csv is missing")
    splits.setdefault("val", [])
    if not splits.get("test"):
        splits["test"] = splits["val"]
    return collector.dataset("kinetics", splits)


# -- detection ----------------------------------------------------------------------------------
def _has(*names: str) -> Callable[[Path], bool]:
    return lambda root: all((root / n).is_file() for n in names)


def _kinetics_csv(root: Path) -> bool:
    path = root / "train.csv"
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as fh:
        return "youtube_id" in fh.readline()


READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], VideoTextDataset]]] = {
    "msrvtt": (_has("MSRVTT_data.json"), read_msrvtt),
    "didemo": (_has("train_data.json", "test_data.json"), read_didemo),
    "youcook2": (_has("youcookii_annotations_trainval.json"), read_youcook2),
    "activitynet": (_has("train.json", "val_1.json"), read_activitynet),
    "webvid": (lambda root: any(root.glob("results_*_train.csv")) or any(root.glob("results_*_val.csv")), read_webvid),
    "kinetics": (_kinetics_csv, read_kinetics),
}
