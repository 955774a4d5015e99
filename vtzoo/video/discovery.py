"""Which files of a folder are videos: each file is probed (opened with FFmpeg, nothing decoded).

A file is a video when its container holds a video stream that is not a cover picture, so
``.3gp``, ``.ts``, ``.mts``, ``.ogv`` or a file without a suffix are found like ``.mp4``, and
an ``.m4a`` or a ``.png`` is not. A file that cannot be opened but is named like a video is kept:
it is a broken video, and whoever decodes it reports why. Every other file is listed in
``skipped`` with the reason, so nothing is left out without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vtzoo.errors import UsageError

# Names that make a file that cannot be opened a broken video rather than something else.
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".3g2",
    ".ts", ".mts", ".m2ts", ".ogv", ".vob", ".mxf",
})
# Demuxers of single pictures: a photo or a poster next to the videos is not a video.
_STILL_IMAGE_FORMATS = frozenset({"image2", "webp", "tiff"})


@dataclass
class Discovery:
    videos: list[Path] = field(default_factory=list)  # in a stable (sorted) order
    skipped: dict[Path, str] = field(default_factory=dict)  # file -> why it is not taken


def why_not_a_video(path: str | Path) -> str | None:
    """None if ``path`` holds a video stream, else the reason it is not a video."""
    import av

    try:
        with av.open(str(path)) as container:
            name = container.format.name
            if name in _STILL_IMAGE_FORMATS or name.endswith("_pipe"):
                return "a still image, not a video"
            pictures = av.stream.Disposition.attached_pic
            if not any(not stream.disposition & pictures for stream in container.streams.video):
                return "no video stream (audio only)" if container.streams.audio else "no video stream"
    except av.FFmpegError as exc:
        return f"not a media file FFmpeg can open ({getattr(exc, 'strerror', None) or exc})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def discover_videos(directory: str | Path) -> Discovery:
    """The videos below ``directory`` (recursively), and every other file with its reason."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"video folder {directory} does not exist or is not a directory")
    found = Discovery()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        reason = why_not_a_video(path)
        if reason is None or (reason.startswith("not a media file") and path.suffix.lower() in VIDEO_SUFFIXES):
            found.videos.append(path)
        else:
            found.skipped[path] = reason
    return found
