"""Every family: a few steps from scratch lower its loss, the saved folder loads through
vtzoo.create, and a run stopped part-way resumes to the end."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.training import load_trained
from vtzoo.training.recipe import load_recipe, resolve_resources

FAMILIES = ("clip4clip", "drl", "frozen_in_time", "movinet", "coot", "videoclip", "mdmmt")


def steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_reloads_and_resumes(family, micro_dataset, micro_overrides, tmp_path):
    out = tmp_path / family
    total = micro_overrides(family)["train.epochs"]  # one step per epoch: 4 pairs, batch 4
    half = micro_overrides(family, **{"train.max_steps": total // 2})
    vtzoo.train(family, micro_dataset, out, overrides=half, progress=False)
    assert [s["step"] for s in steps(out)] == list(range(1, total // 2 + 1))  # stopped by the step budget
    final = vtzoo.train(family, micro_dataset, out, overrides=micro_overrides(family), resume=True, progress=False)
    log = steps(out)
    assert [s["step"] for s in log] == list(range(1, total + 1))  # resumed where it stopped, not from scratch
    losses = [s["loss"] for s in log]
    assert sum(losses[-2:]) < sum(losses[:2]), losses  # the same 4 pairs each step: the loss falls
    assert ("top1" in final) == (family == "movinet")

    # the folder is a model vtzoo.create loads (the recipe's operator options, e.g. a tokenizer)
    recipe = load_recipe("synthetic-tiny", family, micro_overrides(family))
    options = {"precision": "fp32", **resolve_resources(recipe.options)}  # fp32: the saved tensors as they are
    loaded = vtzoo.create(family, recipe.variant, weights=str(out), **options)
    saved = load_file(str(out / "model.safetensors"))
    assert set(saved) == set(loaded.model.state_dict())
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in saved.items())
    assert isinstance(load_trained(out), type(loaded))
