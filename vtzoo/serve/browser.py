"""Headless Chromium for the page's tests and the docs' screenshots: the system's browser
(Debian's ``chromium`` package), driven by Playwright, never a browser Playwright downloads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Without the background-networking flags Chromium keeps calling home, which a closed network
# refuses; --no-sandbox because CI runs as root.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio")


def chromium_path() -> str:
    """The system Chromium: $VTZOO_CHROMIUM, else chromium on the PATH."""
    path = os.environ.get("VTZOO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        raise RuntimeError("no Chromium found: install the system package (apt-get install chromium) "
                           "or point VTZOO_CHROMIUM at the browser")
    return path


def launch(playwright):
    """A headless Chromium browser from a started ``playwright.sync_api.sync_playwright()``."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=list(CHROMIUM_FLAGS))
