"""What native decoders print: captured, so it never interleaves with vtzoo's own messages.

decord and the FFmpeg inside it write straight to file descriptor 2 (``[h264 @ 0x55d...] error
while decoding MB 13 15``, ``[06:17:17] src/video/video_reader.cc:83: ERROR opening: a.mp4, ...``),
below Python's ``sys.stderr``. While at least one :func:`capture` is open, descriptor 2 is a pipe
read by one thread: decoder lines go to the open captures (the caller folds them into the reason
it gives for its file, see :func:`summarise`), everything else (vtzoo's messages, a progress bar,
a warning) goes on to the real stderr at once, in order. Decoding in several threads stays
parallel; a decoder line printed while several files were open goes to each of them (a dmlc line
names its file and goes only to that one).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import Counter

# "[h264 @ 0x55d1c2a3e140] message" (FFmpeg's av_log) and "[06:17:17] src/x.cc:83: message" (dmlc)
_FFMPEG_LINE = re.compile(r"^\[(?P<name>[\w.,\- ]+) @ 0x[0-9a-f]+\] (?P<message>.*)$")
_DMLC_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: (?P<message>.*)$")
_MAX_SUMMARY = 3
_SYNC = re.compile(rb"\0vtzoo-sync (\d+)\n")


def is_native_line(line: str) -> bool:
    return bool(_FFMPEG_LINE.match(line) or _DMLC_LINE.match(line))


class Capture:
    """The decoder lines printed while one file was open."""

    def __init__(self, label: str = ""):
        self.label = label  # the file: a dmlc line naming another file is not this one's
        self.lines: list[str] = []

    def take(self, line: str) -> None:
        dmlc = _DMLC_LINE.match(line)
        if dmlc and self.label and "ERROR opening" in line and self.label not in line:
            return
        self.lines.append(line)

    def messages(self) -> list[str]:
        """The decoder lines so far, including those still in the pipe."""
        _router.sync()
        return list(self.lines)

    def summary(self) -> str:
        return summarise(self.messages())

    def close(self) -> None:
        _router.leave(self)


class _Router:
    """Owns descriptor 2 while captures are open; see the module docstring.

    Locks: ``_state`` orders starting, stopping and sync markers (it may be held while writing to
    the pipe); ``_members`` guards the list of open captures and is the only lock the reading
    thread takes, so the pipe is always drained and no writer can block for good.
    """

    def __init__(self) -> None:
        self._state = threading.Lock()
        self._members = threading.Lock()
        self._captures: list[Capture] = []
        self._terminal: int | None = None  # the real stderr, while the pipe stands in for it
        self._reader: threading.Thread | None = None
        self._synced = threading.Condition()
        self._sync_seen = self._sync_sent = 0

    def join(self, capture: Capture) -> None:
        with self._state:
            if self._reader is None and not self._start():
                return
            with self._members:
                self._captures.append(capture)

    def leave(self, capture: Capture) -> None:
        self.sync()
        reader = terminal = None
        with self._state, self._members:
            if capture in self._captures:
                self._captures.remove(capture)
            if not self._captures and self._reader is not None:
                sys.stderr.flush()
                os.dup2(self._terminal, 2)  # the pipe's last write end closes: the reader drains and ends
                reader, terminal, self._reader, self._terminal = self._reader, self._terminal, None, None
        if reader is not None:
            reader.join(timeout=10)
            if not reader.is_alive():  # else a child process still holds the pipe: leave the reader be
                os.close(terminal)

    def sync(self) -> None:
        """Wait until the reader has routed everything written to descriptor 2 so far."""
        with self._state:
            if self._reader is None:
                return
            self._sync_sent += 1
            ticket = self._sync_sent
            os.write(2, f"\0vtzoo-sync {ticket}\n".encode())
        with self._synced:
            self._synced.wait_for(lambda: self._sync_seen >= ticket, timeout=10)

    def _start(self) -> bool:
        try:
            sys.stderr.flush()
            terminal = os.dup(2)
            read_end, write_end = os.pipe()
        except (OSError, ValueError):  # no descriptor 2 (a daemon): nothing to capture
            return False
        os.dup2(write_end, 2)
        os.close(write_end)
        self._terminal = terminal
        self._reader = threading.Thread(target=self._route, args=(read_end, terminal), name="vtzoo-stderr", daemon=True)
        self._reader.start()
        return True

    def _route(self, read_end: int, terminal: int) -> None:
        pending = b""
        try:
            while chunk := os.read(read_end, 65536):
                pending = self._dispatch(pending + chunk, terminal)
            if pending:
                os.write(terminal, pending)
        except OSError:
            pass
        finally:
            os.close(read_end)

    def _dispatch(self, data: bytes, terminal: int) -> bytes:
        """Route the complete lines of ``data``; returns what must wait for more bytes."""
        # a sync marker may land inside a line another thread is writing in pieces: take it out first
        tickets = [int(t) for t in _SYNC.findall(data)]
        data = _SYNC.sub(b"", data)
        held = data.rfind(b"\0")  # the start of a marker still being written?
        partial = held >= 0 and len(data) - held < 32 and b"\n" not in data[held:]
        data, later = (data[:held], data[held:]) if partial else (data, b"")
        *lines, tail = data.split(b"\n")
        out = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if is_native_line(line):
                with self._members:
                    for capture in self._captures:
                        capture.take(line)
            else:
                out.append(raw + b"\n")
        if tail and not tail.startswith(b"[") and not later:  # a progress bar's "\r..." cannot wait
            out.append(tail)
            tail = b""
        if out:
            os.write(terminal, b"".join(out))
        if tickets:
            with self._synced:
                self._sync_seen = max(self._sync_seen, *tickets)
                self._synced.notify_all()
        return tail + later


_router = _Router()


def capture(label: str = "") -> Capture:
    """Start capturing decoder lines for the file ``label``; call ``close()`` when it is closed."""
    opened = Capture(label)
    _router.join(opened)
    return opened


def summarise(lines: list[str]) -> str:
    """The distinct messages of ``lines``, most frequent first, positions and counts folded:
    ``h264: error while decoding MB (x12); mov: moov atom not found``."""
    counts: Counter[str] = Counter()
    for line in lines:
        ffmpeg, dmlc = _FFMPEG_LINE.match(line), _DMLC_LINE.match(line)
        if ffmpeg:
            message = f"{ffmpeg['name'].split(',')[0]}: {_fold_numbers(ffmpeg['message'])}"
        else:
            message = dmlc["message"] if dmlc else line
        counts[message.strip()] += 1
    parts = [f"{message} (x{count})" if count > 1 else message for message, count in counts.most_common(_MAX_SUMMARY)]
    if len(counts) > _MAX_SUMMARY:
        parts.append(f"{len(counts) - _MAX_SUMMARY} other message(s)")
    return "; ".join(parts)


def _fold_numbers(message: str) -> str:
    """'error while decoding MB 13 15, bytestream 645' -> 'error while decoding MB'."""
    message = re.sub(r"(\s+-?\d+)+(,.*)?$", "", message)
    return re.sub(r"\s+", " ", message).strip()
