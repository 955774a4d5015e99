"""Recipes: every family's files validate; unknown fields are named with a suggestion."""

from __future__ import annotations

import pytest

from vtzoo.errors import ConfigError
from vtzoo.training.family import get_family
from vtzoo.training.recipe import list_recipes, load_recipe

FAMILIES = ("clip4clip", "drl", "frozen_in_time", "movinet", "coot", "videoclip", "mdmmt")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_recipe_of_every_family_validates(family):
    names = list_recipes(family)
    assert "synthetic-tiny" in names
    trainer_family = get_family(family)
    for name in names:
        recipe = load_recipe(name, family)
        trainer_family.settings(recipe.family, name)
        assert recipe.sources, f"{family}/{name} names no sources"


def test_unknown_field_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train: {epochs: 2, batchsize: 8}\n")
    with pytest.raises(ConfigError, match=r"train: unknown field 'batchsize'\. Did you mean: batch_size"):
        load_recipe(path, "clip4clip")
    path.write_text("optimiser: {lr: 1.0e-3}\n")
    with pytest.raises(ConfigError, match=r"unknown field 'optimiser'\. Did you mean: optimizer"):
        load_recipe(path, "clip4clip")
    path.write_text("family: {temprature: 0.1}\n")
    with pytest.raises(ConfigError, match=r"family: unknown field 'temprature'\. Did you mean: temperature"):
        get_family("frozen_in_time").settings(load_recipe(path, "frozen_in_time").family, str(path))
    path.write_text("sources: {optimizer.lrr: somewhere}\n")
    with pytest.raises(ConfigError, match=r"sources names 'optimizer\.lrr'.*Did you mean: optimizer\.lr"):
        load_recipe(path, "clip4clip")


def test_recipe_names_and_overrides():
    with pytest.raises(ConfigError, match=r"no recipe 'synthetic-tine' for 'movinet'\. Did you mean: synthetic-tiny"):
        load_recipe("synthetic-tine", "movinet")
    recipe = load_recipe("synthetic-tiny", "movinet", {"train.epochs": 3, "optimizer.lr": "2e-4"})
    assert recipe.train.epochs == 3 and recipe.optimizer.lr == 2e-4
    with pytest.raises(ConfigError, match="optimizer.name 'adamm' is not one of"):
        load_recipe("synthetic-tiny", "movinet", {"optimizer.name": "adamm"})
