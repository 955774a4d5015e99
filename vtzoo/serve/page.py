"""The HTML of the search page and of the reports: one template, the stylesheet and scripts inlined,
so neither needs anything but its own server (the page) or nothing at all (a report)."""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib import resources
from typing import Any

# A report may load only what it carries (data: thumbnails) and local video files.
REPORT_POLICY = ("default-src 'none'; img-src data:; media-src file:; style-src 'unsafe-inline'; "
                 "script-src 'unsafe-inline'")
# The page talks to its own server only.
PAGE_POLICY = ("default-src 'none'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
               "style-src 'unsafe-inline'; script-src 'unsafe-inline'")

_PLAYER = """<div id="player"><video controls preload="metadata"></video>
<div class="caption"><span></span><button class="secondary" type="button">Close</button></div></div>"""

_SEARCH_BODY = """<form class="query" role="search">
  <label>Query <input name="q" type="search" placeholder="describe what you are looking for" autofocus required></label>
  <label>Results <input name="k" type="number" min="1" value="10" title="at most {max_hits}"></label>
  <label>Path contains <input name="path" type="text" placeholder="folder or name"></label>
  <label>Min duration (s) <input name="min_duration" type="number" step="any" min="0"></label>
  <label>Max duration (s) <input name="max_duration" type="number" step="any" min="0"></label>
  <button type="submit">Search</button>
</form>
<div id="notice" class="notice" hidden></div>
{player}
<div id="summary" class="summary"></div>
<div id="results"></div>"""


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("vtzoo.serve").joinpath("static", name).read_text(encoding="utf-8")


def _document(title: str, about: str, body: str, scripts: list[str], policy: str, data: Any = None) -> str:
    payload = ""
    if data is not None:  # "<" escaped: no string in the data can close the script element
        encoded = json.dumps(data).replace("<", "\\u003c")
        payload = f'<script id="vtzoo-data" type="application/json">{encoded}</script>\n'
    code = "\n".join(_asset(name) for name in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{_asset("style.css")}</style></head>
<body><header><h1>{html.escape(title)}</h1><div class="about" id="about">{html.escape(about)}</div></header>
<main>{body}</main>
{payload}<script>{code}</script>
</body></html>
"""


def search_page(max_hits: int) -> str:
    """The page ``vtzoo serve`` serves at ``/``."""
    body = _SEARCH_BODY.format(max_hits=max_hits, player=_PLAYER)
    return _document("vtzoo search", "", body, ["results.js", "app.js"], PAGE_POLICY)


def report_page(title: str, about: str, data: dict[str, Any]) -> str:
    """A self-contained report; ``data["kind"]`` is ``"search"`` or ``"eval"`` (see report.js)."""
    body = f'{_PLAYER}\n<div id="content"></div>'
    return _document(title, about, body, ["results.js", "report.js"], REPORT_POLICY, data)
