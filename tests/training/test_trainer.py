"""The shared loop: global batch = accumulation, resume after a kill -9, refusals, NaN, bad videos."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.errors import ConfigError
from vtzoo.training.trainer import Trainer, TrainArgs, TrainingError


def steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def last_checkpoint(out) -> dict:
    state = json.loads((out / "trainer_state.json").read_text())
    return load_file(str(out / state["checkpoint"] / "model.safetensors"))


def test_global_batch_accumulates_over_the_whole_batch(micro_dataset, micro_overrides, tmp_path):
    """One step of 2 x 2 items (embeddings cached, the loss over all 4) = one step of 1 x 4."""
    weights = {}
    for name, batch in (("one", 4), ("two", 2)):
        out = tmp_path / name
        args = TrainArgs("clip4clip", micro_dataset, out, batch_size=batch, global_batch=4, progress=False,
                         overrides=micro_overrides("clip4clip", **{"train.max_steps": 1, "train.epochs": 1}))
        trainer = Trainer(args)
        assert trainer.accumulation == 4 // batch
        trainer.run()
        weights[name] = last_checkpoint(out)
    assert steps(tmp_path / "one")[0]["loss"] == pytest.approx(steps(tmp_path / "two")[0]["loss"], rel=1e-5)
    for key, value in weights["one"].items():
        torch.testing.assert_close(weights["two"][key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_batch_size_alone_keeps_the_recipes_global_batch(micro_dataset, micro_overrides, tmp_path):
    overrides = micro_overrides("movinet", **{"train.global_batch": 4})
    trainer = Trainer(TrainArgs("movinet", micro_dataset, tmp_path / "m", batch_size=2, overrides=overrides))
    assert (trainer.batch_size, trainer.global_batch, trainer.accumulation) == (2, 4, 2)
    with pytest.raises(ConfigError, match=r"global batch \(4\) must be a multiple of the batch size \(3\)"):
        Trainer(TrainArgs("movinet", micro_dataset, tmp_path / "m", batch_size=3, overrides=overrides))


def test_resume_after_kill_9_matches_an_uninterrupted_run(micro_dataset, micro_overrides, tmp_path):
    # worker processes decode, a step is two forward passes, a checkpoint after every step
    overrides = micro_overrides("movinet", **{"train.epochs": 3, "train.batch_size": 1, "train.global_batch": 2,
                                              "data.num_workers": 2, "train.checkpoint_every": 1, "train.eval_every": 9})
    flags = [item for key, value in overrides.items() for item in ("--set", f"{key}={json.dumps(value)}")]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(vtzoo.__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "vtzoo.cli", "train", "--op", "movinet", "--dataset", str(micro_dataset),
                             "--out", str(killed), "--quiet", *flags], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state_file, deadline = killed / "trainer_state.json", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # kill -9 once a mid-run checkpoint exists
        if state_file.is_file() and json.loads(state_file.read_text())["progress"]["step"] >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    stopped_at = json.loads(state_file.read_text())["progress"]["step"]
    assert 2 <= stopped_at < 6  # stopped part-way (6 steps in all)

    resumed = vtzoo.train("movinet", micro_dataset, killed, overrides=overrides, resume=True, progress=False)
    reference = vtzoo.train("movinet", micro_dataset, tmp_path / "ref", overrides=overrides, progress=False)
    # the same steps, losses, weights and test metrics as the run that was never stopped
    assert [s["step"] for s in steps(killed)] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(steps(killed), steps(tmp_path / "ref")):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    ref_weights, weights = last_checkpoint(tmp_path / "ref"), last_checkpoint(killed)
    for key, value in ref_weights.items():
        torch.testing.assert_close(weights[key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert resumed == pytest.approx(reference, rel=1e-4, abs=1e-4)


def test_resume_refuses_another_run(micro_dataset, micro_overrides, tmp_path):
    out = tmp_path / "run"
    vtzoo.train("movinet", micro_dataset, out, overrides=micro_overrides("movinet", **{"train.max_steps": 1}), progress=False)
    with pytest.raises(ConfigError, match="already holds a training run"):
        vtzoo.train("movinet", micro_dataset, out, overrides=micro_overrides("movinet"), progress=False)
    with pytest.raises(ConfigError, match=r"another run.*operator: 'movinet' in the saved run, 'clip4clip' now"):
        vtzoo.train("clip4clip", micro_dataset, out, overrides=micro_overrides("clip4clip"), resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"config\.dropout: 0\.2 in the saved run, 0\.5 now"):
        vtzoo.train("movinet", micro_dataset, out, overrides=micro_overrides("movinet", **{"config.dropout": 0.5}),
                    resume=True, progress=False)


def test_nan_loss_stops_naming_the_step_and_the_batch(micro_dataset, micro_overrides, tmp_path):
    overrides = micro_overrides("movinet", **{"optimizer.lr": 1e30, "train.grad_clip": None})
    with pytest.raises(TrainingError) as error:
        vtzoo.train("movinet", micro_dataset, tmp_path / "nan", overrides=overrides, progress=False)
    message = str(error.value)
    step = int(message.split(" at step ")[1].split()[0])
    assert step >= 2 and "the batch's videos: video" in message and ".mp4" in message
    assert len(steps(tmp_path / "nan")) == step - 1  # every finite step was logged, not the NaN one


def test_a_video_that_fails_to_decode_is_skipped_and_counted(micro_dataset, micro_overrides, tmp_path, capfd):
    data = tmp_path / "data"
    shutil.copytree(micro_dataset, data)
    broken = json.loads((data / "splits.json").read_text())["train"][0]
    (data / "videos" / broken).write_bytes(b"not a video at all")
    metrics = vtzoo.train("clip4clip", data, tmp_path / "run", overrides=micro_overrides("clip4clip"), progress=False)
    assert metrics["skipped_videos"] == 1
    assert f"skipped {broken}" in capfd.readouterr().err
    assert len(steps(tmp_path / "run")) == 6  # training went on
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert list(state["progress"]["failed"]) == [broken]
