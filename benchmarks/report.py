"""docs/benchmarks.md (the measured part) and its plot, from the JSON rows under benchmarks/results/.

    python benchmarks/report.py [--results benchmarks/results] [--doc docs/benchmarks.md]

Each ``<workload>.jsonl`` is one ``bench.py --json`` run (see benchmarks/targets.sh). The doc's
text between the ``<!-- results -->`` markers is replaced; everything else is kept. The plot
(``docs/benchmarks_speedup.png``, matplotlib) shows each row's throughput over the original's
float32 (or vtzoo float32 where no original was run).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
START, END = "<!-- results -->", "<!-- /results -->"
RUN_FIELDS = {"implementation", "clips_per_s", "backend", "warmup_s", "repeats", "threads", "torch"}
MIN_COSINE = 0.999  # a fast row counts for a target only if it matches fp32 at least this well


def load(results: Path) -> dict[str, list[dict]]:
    """bench.py runs by workload (other benchmarks' JSON files in the folder, and rows kept by hand
    without bench.py's run fields, such as fp32-against-original.jsonl, are left out)."""
    runs = {}
    for file in sorted(results.glob("*.jsonl")):
        rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        if rows and all(RUN_FIELDS <= set(row) for row in rows):
            runs[file.stem] = rows
    return runs


def baseline(rows: list[dict], implementation: str = "original", precision: str = "fp32") -> dict | None:
    return next((r for r in rows if r["implementation"] == implementation and r["precision"] == precision), None)


def best_vtzoo(rows: list[dict]) -> dict:
    """The fastest vtzoo row that stays within MIN_COSINE of float32."""
    good = [r for r in rows if r["implementation"] == "vtzoo" and r["min_cos_vs_fp32"] >= MIN_COSINE]
    return max(good, key=lambda r: r["clips_per_s"])


def speedup(row: dict, over: dict | None) -> float | None:
    return None if over is None else row["clips_per_s"] / over["clips_per_s"]


def describe(row: dict) -> str:
    return f"vtzoo {row['precision']}/{row['backend']}"


@dataclass
class Target:
    workload: str  # the results file stem(s), joined by '+'
    label: str
    goal: str
    check: Callable[[list[dict]], tuple[str, bool]]


def ratio_target(minimum: float, autocast_minimum: float | None = None, over: str = "original"):
    def check(rows: list[dict]) -> tuple[str, bool]:
        best = best_vtzoo(rows)
        fp32 = baseline(rows, over)
        ratio = speedup(best, fp32)
        text = f"{describe(best)}: {ratio:.2f}x {'the original' if over == 'original' else 'vtzoo'} fp32"
        met = ratio >= minimum
        if autocast_minimum is not None:
            autocast = speedup(best, baseline(rows, "original", "bf16"))
            text += f", {autocast:.2f}x the original under autocast"
            met = met and autocast >= autocast_minimum
        return text + f" (min cos {best['min_cos_vs_fp32']:.5f})", met

    return check


def video_seconds_target(minimum: float, fps: float = 30.0):
    def check(rows: list[dict]) -> tuple[str, bool]:
        best = best_vtzoo(rows)
        rate = lambda r: r["frames"] / fps * r["clips_per_s"]  # noqa: E731
        original = baseline(rows)
        text = f"{describe(best)}: {rate(best):.2f} s of video per s"
        if original is not None:
            text += f" (original fp32 {rate(original):.2f}, {speedup(best, original):.1f}x)"
        return text, rate(best) >= minimum

    return check


def frames_per_s_target(minimum: float):
    def check(rows: list[dict]) -> tuple[str, bool]:
        best = best_vtzoo(rows)
        original = baseline(rows)
        text = f"{describe(best)}: {best['frames_per_s']:.1f} frames/s"
        if original is not None:
            text += f" (original fp32 {original['frames_per_s']:.1f})"
        return text, best["frames_per_s"] >= minimum

    return check


TARGETS = [
    Target("clip4clip", "CLIP4Clip video, 12 x 224², batch 4", ">= 3.0x original fp32, >= 1.5x original autocast",
           ratio_target(3.0, 1.5)),
    Target("drl", "DRL video, 12 x 224², batch 4", ">= 3.0x original fp32, >= 1.5x original autocast", ratio_target(3.0, 1.5)),
    Target("frozen_in_time", "Frozen in Time video, 4 x 224², batch 4", ">= 4x original fp32, >= 1.3x original autocast",
           ratio_target(4.0, 1.3)),
    Target("text_clip", "CLIP text tower, 8 x 32 tokens", ">= 2.5x fp32", ratio_target(2.5, over="vtzoo")),
    Target("text_distilbert", "DistilBERT (Frozen in Time), 8 x 32 tokens", ">= 2.5x fp32", ratio_target(2.5, over="vtzoo")),
    Target("text_bert", "BERT (MDMMT), 8 x 32 tokens", ">= 2.5x fp32", ratio_target(2.5, over="vtzoo")),
    Target("s3d", "S3D features (VideoCLIP, COOT input), 10 s at 30 fps", ">= 4 s of video per s", video_seconds_target(4.0)),
    Target("movinet_a0_stream", "MoViNet A0 stream, frame by frame", ">= 100 frames/s", frames_per_s_target(100)),
    Target("movinet_a2_stream", "MoViNet A2 stream, frame by frame", ">= 40 frames/s", frames_per_s_target(40)),
    Target("movinet_a0_base", "MoViNet A0 base, 50 frames", ">= 2.5x original fp32", ratio_target(2.5)),
    Target("movinet_a2_base", "MoViNet A2 base, 50 frames", ">= 2.5x original fp32", ratio_target(2.5)),
    Target("ircsn152", "irCSN-152 expert, 32 x 224²", ">= 3x fp32", ratio_target(3.0, over="vtzoo")),
]


def targets_table(runs: dict[str, list[dict]]) -> list[str]:
    lines = ["| workload | goal | measured (best row with min cos >= 0.999) | met |", "|---|---|---|---|"]
    for target in TARGETS:
        rows = runs.get(target.workload)
        if not rows:
            lines.append(f"| {target.label} | {target.goal} | not measured in this run set | - |")
            continue
        text, met = target.check(rows)
        lines.append(f"| {target.label} | {target.goal} | {text} | {'yes' if met else 'no'} |")
    return lines


def rows_table(rows: list[dict]) -> list[str]:
    stream = rows[0].get("stream")
    head = ["implementation", "precision", "backend", "batch", "frames" if rows[0].get("task") != "text" else "tokens",
            "frames/s" if stream else "clips/s", "latency ms", "GFLOPs/clip", "min cos vs fp32", "x original fp32",
            "warm-up s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = r["ratio_vs_original_fp32"]
        lines.append("| " + " | ".join([
            r["implementation"], r["precision"], r["backend"], str(r["batch"]), str(r["frames"]),
            f"{r['frames_per_s']:.1f}" if stream else f"{r['clips_per_s']:.3f}", f"{r['latency_ms']:.0f}",
            f"{r['gflops_per_clip']:.1f}", f"{r['min_cos_vs_fp32']:.6f}", "" if ratio is None else f"{ratio:.2f}x",
            f"{r['warmup_s']:.1f}"]) + " |")
    return lines


def load_note(rows: list[dict]) -> list[str]:
    """The machine's load average recorded with the rows (runs before bench.py recorded it have none)."""
    loads = sorted({r["load_average"] for r in rows if r.get("load_average") is not None})
    if not loads:
        return []
    shown = f"{loads[0]:.2f}" if len(loads) == 1 else f"{loads[0]:.2f}-{loads[-1]:.2f}"
    return [f"Machine load average (1 min) when the timing ended: {shown}.", ""]


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)
    fig, ax = plt.subplots(figsize=(10, 0.55 * sum(len(r) for r in runs.values()) + 1))
    labels, values, colours = [], [], []
    for name in names:
        rows = runs[name]
        over = baseline(rows) or baseline(rows, "vtzoo")
        for r in rows:
            labels.append(f"{name}: {r['implementation']} {r['precision']}/{r['backend']}")
            values.append(r["clips_per_s"] / over["clips_per_s"])
            colours.append("tab:blue" if r["implementation"] == "vtzoo" else "tab:grey")
    ax.barh(range(len(values)), values, color=colours)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("throughput / original float32 (vtzoo float32 where no original ran); one run per workload")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(runs: dict[str, list[dict]], image: str) -> str:
    first = next(iter(runs.values()))[0]
    lines = [START, "", f"Generated by `python benchmarks/report.py` from benchmarks/results/*.jsonl (torch "
             f"{first['torch']}, {first['threads']} threads, medians of {first['repeats']} alternating repeats).", "",
             "### Targets", ""]
    lines += targets_table(runs)
    lines += ["", f"![throughput over the original float32]({image})", "", "### Every row", ""]
    for name, rows in runs.items():
        lines += [f"#### {name}: {rows[0]['operator']}/{rows[0]['variant']}", ""]
        lines += load_note(rows) + rows_table(rows) + [""]
    return "\n".join(lines + [END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--doc", default=str(HERE.parent / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    runs = load(Path(args.results))
    if not runs:
        raise SystemExit(f"no results in {args.results}")
    doc = Path(args.doc)
    image = doc.with_name("benchmarks_speedup.png")
    plot(runs, image)
    text = doc.read_text() if doc.is_file() else ""
    block = render(runs, image.name)
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Fast paths: precision and backends\n\n" + block + "\n"
    doc.write_text(text)
    print(f"wrote {doc} and {image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
