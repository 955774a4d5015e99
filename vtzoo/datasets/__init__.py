"""Video-text datasets: the vtzoo layout, the releases people download, generated data.

```python
from vtzoo.datasets import load_dataset
data = load_dataset("path/to/folder")          # format detected from the files
data.split("train")                            # [VideoItem(name, path, captions, label, segments)]
```
Formats: ``vtzoo`` (see :mod:`vtzoo.datasets.layout`) and the releases of
:mod:`vtzoo.datasets.releases` (``msrvtt``, ``didemo``, ``youcook2``, ``activitynet``, ``webvid``,
``kinetics``). ``vtzoo make-synthetic`` writes a generated dataset (:mod:`vtzoo.datasets.synthetic`).
"""

from __future__ import annotations

from pathlib import Path

from vtzoo.datasets.base import SPLITS, DatasetError, Segment, VideoItem, VideoTextDataset, hash_split

__all__ = ["FORMATS", "SPLITS", "DatasetError", "Segment", "VideoItem", "VideoTextDataset", "hash_split", "load_dataset"]

FORMATS = ("vtzoo", "msrvtt", "didemo", "youcook2", "activitynet", "webvid", "kinetics")


def load_dataset(path: str | Path, format: str | None = None) -> VideoTextDataset:
    """Read a dataset folder; ``format`` (one of :data:`FORMATS`) or detected from its files."""
    from vtzoo.datasets.layout import is_vtzoo_layout, read_vtzoo_layout
    from vtzoo.datasets.releases import READERS
    from vtzoo.errors import did_you_mean

    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a directory")
    if format is not None and format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}.{did_you_mean(format, FORMATS)} Known: {', '.join(FORMATS)}")
    if format == "vtzoo" or (format is None and is_vtzoo_layout(root)):
        return read_vtzoo_layout(root)
    if format is not None:
        return READERS[format][1](root)
    for detect, read in READERS.values():
        if detect(root):
            return read(root)
    raise DatasetError(
        f"dataset {root}: no captions.json, captions.csv or labels.json (the vtzoo layout), and no release "
        f"this reader knows ({', '.join(FORMATS[1:])})"
    )
