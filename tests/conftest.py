"""Shared test set-up.

The Hub endpoint must be fixed before anything imports ``huggingface_hub.constants`` (it is
read once, at import), so a free port is reserved here and the local Hub server of
``tests/hub_server.py`` is started on it by the ``local_hub`` fixture.
"""

from __future__ import annotations

import os
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_HUB_DISABLE_XET"] = "1"
# Never touch the user's real cache from tests.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="vtzoo-test-hf-")
os.environ.pop("HF_HUB_OFFLINE", None)
