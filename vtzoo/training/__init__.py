"""Training and fine-tuning: ``vtzoo train`` / :func:`vtzoo.train`.

The shared loop is :mod:`vtzoo.training.trainer`; each family brings its loss and data loading in
``vtzoo/operators/<family>/training.py`` and its recipes in ``vtzoo/operators/<family>/recipes/``.
"""

from __future__ import annotations

from typing import Any


def train(op: str, dataset: Any, out: Any, **kwargs: Any) -> dict[str, Any]:
    """Train operator ``op`` on a dataset folder into ``out``; returns the test split's metrics.

    Keywords: ``variant``, ``recipe`` (a name or a YAML file; default ``synthetic-tiny``),
    ``weights``, ``epochs``, ``max_minutes``, ``batch_size``, ``global_batch``, ``precision``,
    ``seed``, ``resume``, ``device``, ``overrides`` (dotted recipe fields), ``progress``.
    """
    from vtzoo.training.trainer import train as run

    return run(op, dataset, out, **kwargs)


def load_trained(out: Any, **options: Any) -> Any:
    """The operator a ``vtzoo train`` run wrote to ``out``: ``vtzoo.create(op, variant, weights=out,
    **recipe options)`` with the options its recipe gave (tokenizer, text model, ...), updated by
    ``options``."""
    import json
    from pathlib import Path

    import vtzoo
    from vtzoo.training.recipe import resolve_resources

    recipe = json.loads((Path(out) / "recipe.json").read_text(encoding="utf-8"))
    merged = {**resolve_resources(recipe.get("options") or {}), **options}
    return vtzoo.create(recipe["operator"], recipe.get("variant"), weights=str(out), **merged)
