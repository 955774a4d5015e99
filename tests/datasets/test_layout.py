"""The vtzoo layout reader: what it reads, and the error it gives for each kind of bad file."""

from __future__ import annotations

import json
import shutil

import pytest

from vtzoo.datasets import DatasetError, hash_split, load_dataset


def copy(src, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst


def test_reads_generated_dataset(tiny_synthetic):
    data = load_dataset(tiny_synthetic)
    splits = json.loads((tiny_synthetic / "splits.json").read_text())
    assert data.format == "vtzoo"
    assert [i.name for i in data.split("test")] == splits["test"]
    item = data.split("train")[0]
    captions = json.loads((tiny_synthetic / "captions.json").read_text())
    assert item.captions == captions[item.name] and item.path.is_file()
    assert item.segments and item.segments[0].start == 0.0


def test_captions_csv_and_hash_split(tmp_path, place_video):
    root = tmp_path / "csvset"
    names = [f"clip{i}.mp4" for i in range(20)]
    for name in names:
        place_video(root / "videos" / name)
    rows = ["video,caption"] + [f"{n},caption {i} of {n}" for n in names for i in range(2)]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(root)
    assert data.split("train")[0].captions == [f"caption 0 of {data.split('train')[0].name}", f"caption 1 of {data.split('train')[0].name}"]
    for split in ("train", "val", "test"):
        assert all(hash_split(i.name) == split for i in data.split(split))
    assert sum(len(data.split(s)) for s in ("train", "val", "test")) == 20
    # the split of a name depends on nothing else: the same in another dataset
    assert hash_split("clip3.mp4") == hash_split("clip3.mp4") and {hash_split(n) for n in names} == {"train", "val", "test"}


def test_malformed_captions_json_names_file_and_position(tiny_synthetic, tmp_path):
    root = copy(tiny_synthetic, tmp_path)
    (root / "captions.json").write_text('{"video00000.mp4": ["a caption",]}')
    with pytest.raises(DatasetError, match=r"captions\.json: invalid JSON at line 1, column 33"):
        load_dataset(root)


def test_bad_caption_entry_names_the_entry(tiny_synthetic, tmp_path):
    root = copy(tiny_synthetic, tmp_path)
    (root / "captions.json").write_text(json.dumps({"video00000.mp4": ["fine"], "video00001.mp4": [3]}))
    with pytest.raises(DatasetError, match=r"captions\.json: entry 'video00001\.mp4': captions must be"):
        load_dataset(root)


def test_caption_for_missing_video_is_skipped_and_counted(tiny_synthetic, tmp_path):
    root = copy(tiny_synthetic, tmp_path)
    captions = json.loads((root / "captions.json").read_text())
    captions["ghost.mp4"] = ["a video nobody recorded"]
    (root / "captions.json").write_text(json.dumps(captions))
    (root / "splits.json").unlink()
    data = load_dataset(root)
    assert data.missing == ["ghost.mp4"]
    assert "ghost.mp4" in data.problems[0] and "captions.json" in data.problems[0]
    assert len(data.items) == 12


def test_splits_json_errors(tiny_synthetic, tmp_path):
    root = copy(tiny_synthetic, tmp_path)
    splits = json.loads((root / "splits.json").read_text())
    (root / "splits.json").write_text(json.dumps({**splits, "tset": []}))
    with pytest.raises(DatasetError, match=r"splits\.json: entry 'tset': unknown split\. Did you mean: test"):
        load_dataset(root)
    (root / "splits.json").write_text(json.dumps({**splits, "test": [*splits["test"], "video9999.mp4"]}))
    with pytest.raises(DatasetError, match=rf"entry 'test'\[{len(splits['test'])}\]: 'video9999\.mp4' has no captions"):
        load_dataset(root)
    ordered = {"train": splits["train"], "val": splits["val"], "test": [*splits["test"], splits["train"][0]]}
    (root / "splits.json").write_text(json.dumps(ordered))
    with pytest.raises(DatasetError, match=rf"entry 'test'\[{len(splits['test'])}\]: .* is also in the 'train' split"):
        load_dataset(root)
    (root / "splits.json").write_text("[1, 2")
    with pytest.raises(DatasetError, match=r"splits\.json: invalid JSON"):
        load_dataset(root)


def test_segments_and_labels_validated(tiny_synthetic, tmp_path):
    root = copy(tiny_synthetic, tmp_path)
    (root / "segments.json").write_text(json.dumps({"video00000.mp4": [{"start": 3, "end": 1, "text": "x"}]}))
    with pytest.raises(DatasetError, match=r"segments\.json: entry 'video00000\.mp4'\[0\]: needs 0 <= start <= end"):
        load_dataset(root)
    (root / "segments.json").unlink()
    (root / "labels.json").write_text(json.dumps({"video00000.mp4": ""}))
    with pytest.raises(DatasetError, match=r"labels\.json: entry 'video00000\.mp4': the label must be"):
        load_dataset(root)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no captions.json, captions.csv or labels.json"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset format 'msrvt'. Did you mean: msrvtt"):
        load_dataset(tmp_path, format="msrvt")
