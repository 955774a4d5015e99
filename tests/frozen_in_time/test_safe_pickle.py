"""vtzoo.registry.safe_pickle: tensors out of pickled checkpoints, no pickled code executed."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
import torch

from vtzoo.registry.safe_pickle import InertObject, load_checkpoint, load_checkpoint_tensors
from vtzoo.registry.weights import WeightsError


def test_trainer_checkpoint_with_config_parser_reads_tensors_only(trainer_checkpoint, standard_case):
    path, markers = trainer_checkpoint
    loaded = load_checkpoint_tensors(path)

    assert list(loaded) == ["arch", "epoch", "state_dict", "optimizer", "monitor_best"]  # 'config' dropped
    assert loaded["epoch"] == 3 and loaded["arch"] == "FrozenInTime"
    expected = standard_case["state_dict"]
    assert set(loaded["state_dict"]) == {"module." + k for k in expected}
    for key, value in expected.items():
        assert torch.equal(loaded["state_dict"]["module." + key], value)
    # Nothing of the training code ran: no import, no __init__, no __setstate__.
    assert sorted(p.name for p in markers.iterdir()) == []
    assert "parse_config" not in sys.modules


def test_config_object_becomes_an_inert_record(trainer_checkpoint):
    path, markers = trainer_checkpoint
    config = load_checkpoint(path)["config"]
    assert isinstance(config, InertObject)
    assert config.qualified_name == "parse_config.ConfigParser"
    state = config.pickled_state
    assert state["_config"]["name"] == "MSRVTTjsfusion_4f_stformer_pt-im21k"
    assert state["cfg_fname"].qualified_name.startswith("pathlib")  # a Path, also inert
    assert state["cfg_fname"].pickled_args == ("configs", "msrvtt_4f_i21k.json")
    assert list(markers.iterdir()) == []


def test_plain_state_dict_is_returned_unchanged(tmp_path):
    sd = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    torch.save(sd, tmp_path / "plain.pth")
    loaded = load_checkpoint_tensors(tmp_path / "plain.pth")
    assert set(loaded) == {"a", "b"} and torch.equal(loaded["a"], sd["a"])


def test_stdlib_config_objects_namespace_paths_and_numpy_are_inert(tmp_path):
    import argparse
    import configparser
    from pathlib import Path

    import numpy as np

    parser = configparser.ConfigParser()
    parser.read_string("[train]\nlr = 3e-5\n")
    weights = {"w": torch.arange(4.0)}
    torch.save(
        {
            "state_dict": weights,
            "config": parser,
            "args": argparse.Namespace(lr=3e-5, out=Path("exps/run")),
            "monitor_best": np.float64(0.75),
        },
        tmp_path / "ckpt.pth",
    )
    loaded = load_checkpoint_tensors(tmp_path / "ckpt.pth")
    assert list(loaded) == ["state_dict"]
    assert torch.equal(loaded["state_dict"]["w"], weights["w"])


EVIL_MODULE = textwrap.dedent(
    '''
    import os
    import pathlib

    MARKERS = pathlib.Path(os.environ["VTZOO_TEST_MARKERS"])
    (MARKERS / "evil_module_imported").write_text("imported")


    class Payload:
        def __setstate__(self, state):
            (MARKERS / "payload_setstate").write_text("ran")
    '''
)


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Payload:
    def __init__(self):
        self.x = 1


@pytest.mark.parametrize("kind, named", [("command", "posix.system"), ("class", "evilmod.Payload")])
def test_unknown_classes_are_refused_without_running(tmp_path, monkeypatch, picklable_as, kind, named):
    module_dir, markers = tmp_path / "mods", tmp_path / "markers"
    module_dir.mkdir()
    markers.mkdir()
    (module_dir / "evilmod.py").write_text(EVIL_MODULE)
    out = tmp_path / "evil.pth"
    if kind == "command":
        torch.save({"state_dict": {"w": torch.ones(1)}, "extra": _RunsCommand(markers / "command_ran")}, out)
    else:
        with picklable_as("evilmod", Payload=type("Payload", (_Payload,), {})) as mod:
            torch.save({"state_dict": {"w": torch.ones(1)}, "extra": mod.Payload()}, out)
    monkeypatch.setenv("VTZOO_TEST_MARKERS", str(markers))
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)

    with pytest.raises(WeightsError) as err:
        load_checkpoint_tensors(out)
    message = str(err.value)
    assert str(out) in message and named in message
    assert list(markers.iterdir()) == []
    assert "evilmod" not in sys.modules


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="bad.pth.tar"):
        load_checkpoint(bad)
