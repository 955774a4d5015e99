"""MMT's training checkpoints pickle their ConfigParser next to the weights: read them safely."""

from __future__ import annotations

import argparse
import pathlib
import sys
import textwrap
from collections import OrderedDict

import torch

from vtzoo.operators.mdmmt.model import MdmmtModel


def test_mmt_training_checkpoint_with_its_config_object_loads_without_importing_it(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    marker = tmp_path / "imported"
    (source / "parse_config.py").write_text(textwrap.dedent(f"""
        open({str(marker)!r}, "w").close()  # importing the training code must never happen

        class ConfigParser:
            def __init__(self):
                self._config = {{"arch": {{"type": "CENet"}}}}
    """))
    monkeypatch.syspath_prepend(str(source))
    import parse_config

    config = parse_config.ConfigParser()
    config._args = argparse.Namespace(resume=None, device="0")
    config._save_dir = pathlib.PosixPath("/exps/mmt")
    weights = OrderedDict(
        [("text_GU.Linear.weight", torch.randn(4, 4)), ("vid_bert.encoder.layer.0.output.layer_norm.bias", torch.randn(4))]
    )
    path = tmp_path / "trained_model.pth"
    torch.save({"arch": "CENet", "epoch": 20, "state_dict": weights, "monitor_best": 0.5, "config": config}, path)
    marker.unlink()
    monkeypatch.delitem(sys.modules, "parse_config")

    state = MdmmtModel.checkpoint_reader()(path)
    assert list(state) == list(weights)
    assert all(torch.equal(state[k], weights[k]) for k in weights)
    assert not marker.exists() and "parse_config" not in sys.modules
