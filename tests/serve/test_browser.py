"""The search page and the reports in a real browser: the system's headless Chromium, driven by
Playwright (see vtzoo/serve/browser.py)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from vtzoo.serve import browser as system_browser

THUMBNAILS_LOADED = """(selector) => {
    const images = [...document.querySelectorAll(selector)];
    return images.length > 0 && images.every((img) => img.complete && img.naturalWidth > 0);
}"""


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = system_browser.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []  # no script error on any page


class ServeProcess:
    """``vtzoo serve`` as a user runs it, on a free port; the URL is read from its first line."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "vtzoo.cli", "serve", "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        try:
            self.banner = lines.get(timeout=120)
        except queue.Empty:
            self.process.kill()
            raise AssertionError(f"vtzoo serve printed nothing: {self.process.stderr.read()}") from None
        self.url = re.search(r"http://\S+", self.banner).group(0)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def search(page, text: str, **filters: str) -> None:
    page.fill("input[name=q]", text)
    for name, value in filters.items():
        page.fill(f"input[name={name}]", value)
    with page.expect_response(lambda response: "/api/search?" in response.url):
        page.press("input[name=q]", "Enter")
    page.wait_for_function("() => document.getElementById('summary').textContent !== 'Searching…'")


def test_vtzoo_serve_shows_thumbnails_for_a_query_and_plays_a_hit(demo_index, kit, page):
    server = ServeProcess("--db", str(demo_index), *kit.step_sets())
    try:
        assert server.url.startswith("http://127.0.0.1:")  # this machine only, by default
        page.goto(server.url)
        page.wait_for_function("() => /4 rows/.test(document.getElementById('about').textContent)")
        search(page, "a rabbit in a meadow")
        assert page.locator("li.hit").count() == 4
        page.wait_for_function(THUMBNAILS_LOADED, arg="li.hit img.thumb", timeout=60_000)
        assert page.locator("li.hit img.thumb").count() == 16  # a strip of 4 frames per hit
        assert any(demo_index.with_name("vtzoo.db.thumbs").rglob("*.jpg"))  # cached beside the index

        page.locator("li.hit button.play").first.click()
        page.wait_for_function("() => { const v = document.querySelector('#player video');"
                               " return !v.paused && v.currentTime > 0.3; }", timeout=30_000)
    finally:
        server.close()


def test_a_window_hit_plays_from_its_start_and_finds_more_like_it(window_index, kit, page, tmp_path):
    with kit.serve(window_index, tmp_path / "thumbs", extra=kit.WINDOWS) as server:
        page.goto(server.url)
        search(page, "people riding bikes", k="100000")
        assert page.locator("#summary").inner_text() == "“people riding bikes”: 5 results (capped at 100)"
        search(page, "people riding bikes", path="bikes", k="10")
        window = page.locator("li.hit[data-id$='@4.000-8.000']")
        assert page.locator("li.hit").count() == 3 and window.locator(".window").inner_text() == "0:04.0 – 0:08.0"
        page.wait_for_function(THUMBNAILS_LOADED, arg="li.hit[data-id$='@4.000-8.000'] img.thumb", timeout=60_000)

        window.locator("button.play").click()
        page.wait_for_function("() => { const v = document.querySelector('#player video');"
                               " return !v.paused && v.currentTime > 4.3; }", timeout=30_000)
        assert 4.0 <= page.evaluate("document.querySelector('#player video').currentTime") < 8.0

        window.locator("button.similar").click()
        page.wait_for_function("() => /More like bikes.mp4 0:04.0/.test(document.getElementById('summary').textContent)")
        ids = page.eval_on_selector_all("li.hit", "items => items.map((li) => li.dataset.id)")
        assert len(ids) == 2 and not any(i.endswith("@4.000-8.000") for i in ids)  # the other bikes windows



def test_the_page_shows_an_empty_state_and_missing_files(index_missing_bikes, kit, page, tmp_path):
    with kit.serve(index_missing_bikes, tmp_path / "thumbs") as server:
        page.goto(server.url)
        search(page, "a cat", path="no-such-folder")
        assert page.locator(".empty").inner_text() == "No video matches this query (with these filters)."
        assert page.locator("#notice").is_hidden()  # not an error

        search(page, "a cat", path="")
        gone = page.locator("li.hit.missing")
        assert gone.locator(".name").inner_text() == "bikes.mp4"
        assert gone.locator(".missing-note").inner_text() == "Missing: the file was moved or deleted since it was indexed"
        assert gone.locator("img").count() == 0 and gone.locator("button.play").count() == 0
        page.wait_for_function(THUMBNAILS_LOADED, arg="li.hit:not(.missing) img.thumb", timeout=60_000)


def test_the_page_says_which_operator_an_index_needs(kit, page, tmp_path):
    import torch

    from vtzoo.pipelines.index import VectorIndex

    rows = [{"id": "b" * 64, "path": "/v/b.mp4", "content_hash": "b" * 64, "duration": 1.0, "start": 0.0, "end": 1.0}]
    VectorIndex(str(tmp_path / "drl.db")).insert_vectors("drl__vit_b32_msrvtt_wti", torch.randn(1, 512), rows)
    with kit.serve(tmp_path / "drl.db", tmp_path / "thumbs") as server:
        page.goto(server.url)
        page.wait_for_selector("#notice.error")
        message = page.locator("#notice").inner_text()
        assert "drl/vit-b32-msrvtt-wti" in message and "clip4clip/vit-b32-zeroshot" in message
        search(page, "a cat")  # a query still answers, with the same explanation
        assert "drl/vit-b32-msrvtt-wti" in page.locator("#notice").inner_text()


def open_offline(chromium, report: Path):
    """The report in a browser with the network switched off, and every address it asked for."""
    context = chromium.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and requested.append(f"console: {message.text}"))
    page.goto(report.as_uri())
    return context, page, requested


def test_the_search_report_opens_offline(index_missing_bikes, kit, chromium, tmp_path):
    from vtzoo.cli import main

    report = tmp_path / "report.html"
    code = main(["search", "a rabbit in a meadow", "--db", str(index_missing_bikes), "--html", str(report),
                 *kit.step_sets()])
    assert code == 0
    context, page, requested = open_offline(chromium, report)
    try:
        page.wait_for_function(THUMBNAILS_LOADED, arg="li.hit img.thumb")
        assert page.locator("li.hit").count() == 2 and page.locator("li.hit img.thumb").count() == 4
        assert page.locator("li.hit.missing .missing-note").inner_text() == (
            "Missing: the file was moved or deleted since it was indexed")
        assert {url.split(":", 1)[0] for url in requested} <= {"file", "data"}, requested
        page.locator("li.hit button.play").first.click()  # the local video file plays
        page.wait_for_function("() => document.querySelector('#player video').currentTime > 0.3", timeout=30_000)
    finally:
        context.close()


def test_the_eval_report_opens_offline(sample_dir, kit, chromium, tmp_path):
    import json

    from vtzoo.cli import main

    dataset = tmp_path / "dataset"
    (dataset / "videos").mkdir(parents=True)
    for name in ("bikes.mp4", "bigbuckbunny.mp4"):
        shutil.copyfile(sample_dir / name, dataset / "videos" / name)
    # "a video" captions both: one of the two is not ranked first, so there is a worst query to show
    (dataset / "captions.json").write_text(json.dumps({"bikes.mp4": ["people ride bikes", "a video"],
                                                       "bigbuckbunny.mp4": "a video"}))
    report = tmp_path / "eval.html"
    assert main(["eval", "--dataset", str(dataset), "-q", "--html", str(report), *kit.step_sets(flag="--set")]) == 0
    context, page, requested = open_offline(chromium, report)
    try:
        page.wait_for_function(THUMBNAILS_LOADED, arg="li.hit img.thumb")
        assert page.locator(".bars .bar").count() == 6  # R@1/5/10, both directions
        assert page.locator("table.ranks tr").count() == 1 + 3  # a header and one row per query
        ranks = [int(cell) for cell in page.locator("table.ranks td.num").all_inner_texts()]
        assert page.locator(".worst").count() == len([r for r in ranks if r > 1])  # (their values: test_cli.py)
        assert {url.split(":", 1)[0] for url in requested} <= {"file", "data"}, requested
    finally:
        context.close()
