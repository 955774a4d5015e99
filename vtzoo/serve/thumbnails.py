"""Thumbnail strips of index hits: a few JPEG frames of a video (or of one window of it).

Thumbnails are made once and kept on disk, keyed by the video's content hash and the window, so
a renamed or moved file costs nothing and a file whose content changed never shows old frames:
``<root>/<content hash>/<start ms>-<end ms>/<count>-<i>.jpg``. The default root is beside the
index database (``<db>.thumbs/``); for a Milvus server, the vtzoo cache folder.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from pathlib import Path

DEFAULT_COUNT = 4
THUMBNAIL_SHORT_SIDE = 120
_HASH = re.compile(r"^[0-9a-f]{64}$")


def default_root(db_uri: str | None) -> Path:
    """``<db>.thumbs`` beside a Milvus Lite file; the vtzoo cache folder for a Milvus server or
    without an index (``None``: a folder search, an evaluation)."""
    from vtzoo.folder_search import default_cache_dir
    from vtzoo.pipelines.index import is_local_uri

    if db_uri and is_local_uri(db_uri):
        return Path(db_uri + ".thumbs")
    return default_cache_dir() / "thumbs"


class ThumbnailCache:
    """``cache.strip(path, content_hash, start, end)`` -> the JPEG files of that window's frames."""

    def __init__(self, root: str | os.PathLike, count: int = DEFAULT_COUNT, short_side: int = THUMBNAIL_SHORT_SIDE):
        if count < 1:
            raise ValueError(f"thumbnail count must be at least 1, got {count}")
        self.root = Path(root)
        self.count = count
        self.short_side = short_side
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def folder(self, content_hash: str, start: float, end: float) -> Path:
        if not _HASH.match(content_hash):
            raise ValueError(f"not a content hash: {content_hash!r}")
        return self.root / content_hash / f"{round(start * 1000)}-{round(end * 1000)}"

    def files(self, content_hash: str, start: float, end: float) -> list[Path]:
        folder = self.folder(content_hash, start, end)
        return [folder / f"{self.count}-{i}.jpg" for i in range(self.count)]

    def strip(self, path: str | os.PathLike, content_hash: str, start: float, end: float) -> list[Path]:
        """The thumbnail files of ``path`` between ``start`` and ``end`` seconds, made on first use.

        Raises VideoDecodeError when the video cannot be read (the caller shows the hit without
        frames)."""
        files = self.files(content_hash, start, end)
        if all(f.is_file() for f in files):
            return files
        with self._lock_for(files[0].parent):
            if not all(f.is_file() for f in files):
                self._make(path, start, end, files)
        return files

    def _lock_for(self, folder: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(folder, threading.Lock())

    def _make(self, path: str | os.PathLike, start: float, end: float, files: list[Path]) -> None:
        from PIL import Image

        from vtzoo.video import Preprocess, load_video

        # "middle" sampling: one frame from the middle of each of `count` equal parts of the window
        window = {"start": start, "end": end} if end > start else {}
        clip = load_video(os.fspath(path), num_frames=self.count, sampling="middle",
                          preprocess=Preprocess(resize=self.short_side, interpolation="bilinear"), **window)
        frames = (clip.frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        files[0].parent.mkdir(parents=True, exist_ok=True)
        for i, file in enumerate(files):
            frame = frames[min(i, len(frames) - 1)]  # a window shorter than `count` frames repeats its last
            tmp = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            Image.fromarray(frame).save(tmp, format="JPEG", quality=80)
            os.replace(tmp, file)


def data_uri(file: str | os.PathLike) -> str:
    """A JPEG file as a ``data:`` URI, for pages that must open without a server."""
    payload = base64.b64encode(Path(file).read_bytes()).decode("ascii")
    return f"data:image/jpeg;base64,{payload}"

