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
