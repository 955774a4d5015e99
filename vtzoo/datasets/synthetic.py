"""A generated video-text dataset: coloured shapes that move, captioned in varied words.

``make_synthetic(DIR)`` writes a dataset in the vtzoo layout (``videos/*.mp4``, ``captions.json``,
``labels.json``, ``segments.json``, ``splits.json``). Each video shows one shape of one colour on
a dark background; in an event the shape moves (left, right, up, down) or changes size (grows,
shrinks). A fraction of the videos holds two events one after the other (each with its segment
and its own sentence). Every video gets several captions that name the colour, the shape and the
motion with synonyms and in different word orders, so a model has to learn the attributes, not
the sentences. Some captions are phrased like instructional speech, "<verb> the <shape>" with an
imperative verb that stands for the motion (:data:`MOTION_VERBS`: "push the square to the right",
"now let me show you how to raise the disc"), so a model that reads captions as a video's speech
(VideoBERT's zero-shot template "now let me show you how to [MASK] the [MASK]") has verbs and nouns
to predict. ``labels.json`` gives the motion of single-event videos (a classification task).

Everything is drawn from one ``numpy`` generator seeded by ``seed``: the same arguments give the
same files. Videos are H.264 (PyAV), ``frames`` frames at ``fps``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vtzoo.errors import ConfigError

COLOURS: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {
    "red": ((230, 40, 40), ("red", "crimson", "scarlet")),
    "green": ((40, 200, 60), ("green", "emerald", "lime")),
    "blue": ((50, 80, 240), ("blue", "azure", "cobalt")),
    "yellow": ((240, 220, 40), ("yellow", "golden", "lemon")),
    "purple": ((170, 60, 220), ("purple", "violet", "lilac")),
    "cyan": ((40, 220, 220), ("cyan", "turquoise", "aqua")),
}
SHAPES: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "ball", "round dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge", "three-sided shape"),
    "cross": ("cross", "plus sign", "plus"),
}
# motion -> (present-tense phrases, gerund phrases)
MOTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "left": (("moves to the left", "slides left", "travels leftwards", "drifts to the left"),
             ("moving left", "sliding to the left", "heading left")),
    "right": (("moves to the right", "slides right", "travels rightwards", "drifts to the right"),
              ("moving right", "sliding to the right", "heading right")),
    "up": (("moves up", "rises", "climbs upwards", "floats up"),
           ("moving up", "rising", "going upwards")),
    "down": (("moves down", "falls", "sinks downwards", "drops"),
             ("moving down", "falling", "going downwards")),
    "grow": (("grows", "gets bigger", "expands", "swells"),
             ("growing", "getting larger", "expanding")),
    "shrink": (("shrinks", "gets smaller", "contracts", "dwindles"),
               ("shrinking", "getting smaller", "contracting")),
}
# motion -> imperative verbs of the speech-like captions (the first is the motion's canonical verb:
# English has no verb for "to the left", so pulling moves a shape left and pushing moves it right),
# and the direction phrase that may follow "<verb> the <shape>"
MOTION_VERBS: dict[str, tuple[tuple[str, ...], str]] = {
    "left": (("pull", "drag"), " to the left"),
    "right": (("push", "shove"), " to the right"),
    "up": (("raise", "lift"), " up"),
    "down": (("lower", "drop"), " down"),
    "grow": (("grow", "expand"), ""),
    "shrink": (("shrink", "squeeze"), ""),
}
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.1), ("test", 0.2))


@dataclass
class Event:
    colour: str
    shape: str
    motion: str
    start_frame: int
    end_frame: int  # exclusive


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def describe(event: Event, rng: np.random.Generator) -> str:
    """One sentence about an event, in one of several word orders, with synonyms."""
    colour = _pick(rng, COLOURS[event.colour][1])
    shape = _pick(rng, SHAPES[event.shape])
    verb, gerund = _pick(rng, MOTIONS[event.motion][0]), _pick(rng, MOTIONS[event.motion][1])
    article = "an" if colour[0] in "aeiou" else "a"
    imperative, direction = _pick(rng, MOTION_VERBS[event.motion][0]), MOTION_VERBS[event.motion][1]
    tail = direction if rng.random() < 0.5 else ""
    templates = (
        f"now let me show you how to {imperative} the {shape}{tail}",
        f"watch me {imperative} the {colour} {shape}{tail}",
        f"next we {imperative} the {shape}{tail}",
        f"{article} {colour} {shape} {verb}",
        f"the {colour} {shape} {verb}",
        f"a {shape} coloured {colour} {verb}",
        f"{article} {colour} {shape} {gerund}",
        f"{gerund}, {article} {colour} {shape}",
        f"the {shape}, which is {colour}, {verb}",
        f"there is {article} {colour} {shape} {gerund}",
        f"a {shape} in {colour} {verb} across the screen" if event.motion in ("left", "right") else
        f"a {shape} in {colour} {verb}",
    )
    return _pick(rng, templates)


def caption(events: Sequence[Event], rng: np.random.Generator) -> str:
    parts = [describe(e, rng) for e in events]
    if len(parts) == 1:
        return parts[0]
    joiner = _pick(rng, ("{0}, then {1}", "first {0}; after that {1}", "{0} and afterwards {1}"))
    return joiner.format(*parts)


def _shape_mask(shape: str, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        return (np.abs(dx) <= radius * 0.85) & (np.abs(dy) <= radius * 0.85)
    if shape == "triangle":  # apex up: inside the three half-planes
        top, bottom = cy - radius, cy + radius * 0.8
        half_width = (ys - top) / (bottom - top) * radius
        return (ys >= top) & (ys <= bottom) & (np.abs(dx) <= half_width)
    if shape == "cross":
        bar = radius * 0.35
        return ((np.abs(dx) <= bar) & (np.abs(dy) <= radius)) | ((np.abs(dy) <= bar) & (np.abs(dx) <= radius))
    raise ValueError(f"unknown shape {shape!r}")


def _trajectory(event: Event, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y and radius for each frame of the event."""
    n = event.end_frame - event.start_frame
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    radius = size * rng.uniform(0.12, 0.17)
    margin = radius * 1.1
    travel = size * rng.uniform(0.45, 0.6)
    cx0, cy0 = rng.uniform(margin + travel / 2, size - margin - travel / 2, size=2)
    cx, cy, r = np.full(n, cx0), np.full(n, cy0), np.full(n, radius)
    if event.motion in ("left", "right"):
        sign = 1.0 if event.motion == "right" else -1.0
        cx = cx0 + sign * travel * (t - 0.5)
    elif event.motion in ("up", "down"):
        sign = 1.0 if event.motion == "down" else -1.0
        cy = cy0 + sign * travel * (t - 0.5)
    else:
        small, large = size * 0.06, size * 0.24
        r = small + (large - small) * (t if event.motion == "grow" else 1.0 - t)
    return cx, cy, r


def render(events: Sequence[Event], frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size, 3) uint8 video of the events."""
    background = rng.integers(0, 50, size=3)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    video[:] = background.astype(np.uint8)
    for event in events:
        rgb = np.clip(np.array(COLOURS[event.colour][0]) + rng.integers(-20, 21, size=3), 0, 255).astype(np.uint8)
        for k, (cx, cy, r) in enumerate(zip(*_trajectory(event, size, rng))):
            video[event.start_frame + k][_shape_mask(event.shape, size, cx, cy, r)] = rgb
    return video


def write_mp4(path: Path, video: np.ndarray, fps: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "17"}
        stream.codec_context.thread_count = 1  # one thread: the same bytes on every machine
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _events(rng: np.random.Generator, frames: int, multi_event: float) -> list[Event]:
    count = 2 if rng.random() < multi_event else 1
    bounds = np.linspace(0, frames, count + 1).round().astype(int)
    events = []
    for i in range(count):
        motion = _pick(rng, list(MOTIONS))
        if i and motion == events[-1].motion:  # two different motions, so each segment is distinct
            motion = list(MOTIONS)[(list(MOTIONS).index(motion) + 1) % len(MOTIONS)]
        events.append(Event(_pick(rng, list(COLOURS)), _pick(rng, list(SHAPES)), motion, int(bounds[i]), int(bounds[i + 1])))
    return events


def make_synthetic(
    directory: str | Path,
    count: int = 300,
    size: int = 64,
    frames: int = 32,
    fps: int = 8,
    captions_per_video: int = 5,
    multi_event: float = 0.25,
    seed: int = 0,
) -> Path:
    """Write the dataset to ``directory`` (created; existing files of the layout are replaced)."""
    if count < 1 or size < 16 or frames < 4 or fps < 1 or captions_per_video < 1 or not 0 <= multi_event <= 1:
        raise ConfigError(
            "make_synthetic needs count >= 1, size >= 16, frames >= 4, fps >= 1, captions_per_video >= 1 and "
            f"0 <= multi_event <= 1 (got count={count}, size={size}, frames={frames}, fps={fps}, "
            f"captions_per_video={captions_per_video}, multi_event={multi_event})"
        )
    root = Path(directory)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    captions, labels, segments, names = {}, {}, {}, []
    for index in range(count):
        name = f"video{index:05d}.mp4"
        events = _events(rng, frames, multi_event)
        write_mp4(root / "videos" / name, render(events, frames, size, rng), fps)
        names.append(name)
        captions[name] = [caption(events, rng) for _ in range(captions_per_video)]
        segments[name] = [
            {"start": round(e.start_frame / fps, 3), "end": round(e.end_frame / fps, 3), "text": describe(e, rng)}
            for e in events
        ]
        if len(events) == 1:
            labels[name] = events[0].motion
    order = rng.permutation(count)
    splits, start = {}, 0
    for i, (split, fraction) in enumerate(SPLIT_FRACTIONS):
        stop = count if i == len(SPLIT_FRACTIONS) - 1 else start + int(round(fraction * count))
        splits[split] = sorted(names[j] for j in order[start:stop])
        start = stop
    for file, data in (("captions", captions), ("labels", labels), ("segments", segments), ("splits", splits)):
        (root / f"{file}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return root
