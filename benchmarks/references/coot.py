"""Reference adapter: the original COOT code (a checkout of gingsi/coot-videotext) on the same
weights and input as vtzoo, for ``benchmarks/bench.py --op coot --reference PATH``.

The original is built as ``train_retrieval.py`` builds it: the experiment yaml of the variant
(``config/retrieval/paper2020/yc2_100m_coot.yaml`` for ``youcook2-s3d``, the default) read by
``load_yaml_config_file``, turned into a ``RetrievalConfig`` and handed to
``RetrievalModelManager``, whose four ``TransformerLegacy`` networks get the original
initialisation (seeded); the yaml's CUDA and fp16 switches are set off, as its ``--cpu`` runs do.
Its ``get_model_state()`` (what the trainer saves) is converted into vtzoo.

Workload: precomputed per-second S3D features (the variant's input; the raw-video path puts the
S3D of ``benchmarks/references/s3d.py`` in front), ``max_frames`` = 80 steps per video in 4
clips, as ``example_video_input`` makes them. The timed call is the original's
``encode_visual`` on the batch its collate builds (whole video + clips, masks True = padding),
returning ``vid_emb``, which vtzoo's ``embed_video`` returns as ``pooled``.

Python >= 3.10 lost the ``collections.Iterable``/``Mapping``/... aliases the checkout imports:
they are set back to the ``collections.abc`` classes. Modules it imports that are not installed
and that the model path never uses (``GPUtil``, ``psutil``, ``h5py``, ``pathspec``,
``torch.utils.tensorboard``) are stubbed, and only when they are missing.
"""

from __future__ import annotations

import collections
import collections.abc
import importlib.util
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch

# the experiment yaml of each vtzoo variant (config/retrieval/paper2020/)
EXPERIMENTS = {"youcook2-s3d": "yc2_100m_coot", "youcook2-2d3d": "yc2_2d3d_coot", "activitynet": "anet_coot"}
_UNUSED_MODULES = ("GPUtil", "psutil", "h5py", "pathspec", "torch.utils.tensorboard")


class _Stub(types.ModuleType):
    """A module that is only imported: any name read from it (type hints such as
    ``pathspec.PathSpec``) is a placeholder class."""

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def _shim_python(path: str) -> None:
    for name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    for name in _UNUSED_MODULES:
        if name not in sys.modules and _missing(name):
            sys.modules[name] = _Stub(name)
    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def _original_model(path: str, variant: str):
    _shim_python(path)
    from coot.configs_retrieval import RetrievalConfig  # noqa: E402  (the checkout's package)
    from coot.model_retrieval import RetrievalModelManager  # noqa: E402
    from nntrainer.utils_yaml import load_yaml_config_file  # noqa: E402

    if variant not in EXPERIMENTS:
        raise SystemExit(f"no original experiment known for coot/{variant} (known: {sorted(EXPERIMENTS)})")
    config = load_yaml_config_file(Path(path) / "config" / "retrieval" / "paper2020" / f"{EXPERIMENTS[variant]}.yaml")
    config.update(use_cuda=False, use_multi_gpu=False, fp16_train=False, fp16_val=False)
    cfg = RetrievalConfig(config, is_train=False)
    torch.manual_seed(0)
    manager = RetrievalModelManager(cfg)
    manager.set_all_models_eval()
    return manager


def build(path: str, op, videos: list) -> tuple[Callable[[], Any], int]:
    """The original's ``encode_visual`` on ``videos`` (a list of ``CootVideoFeatures``), with vtzoo
    loaded alike."""
    from vtzoo.operators.coot.convert import flatten_original_checkpoint
    from vtzoo.operators.coot.inputs import video_batch
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    manager = _original_model(path, op.card.variant if op.card else "youcook2-s3d")
    state = flatten_original_checkpoint(manager.get_model_state())  # the trainer's checkpoint layout
    converted = op.model.converters()["original"](state, config)
    load_state_dict_strict(op.model, converted, origin=f"original COOT at {path}")
    batch = SimpleNamespace(**video_batch(videos, config.video_feature_dim, config.max_frames))

    def run() -> torch.Tensor:
        return manager.encode_visual(batch).vid_emb

    return run, sum(p.numel() for net in manager.model_dict.values() for p in net.parameters())
