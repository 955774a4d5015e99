"""The operator registry: decorator registration, entry-point plug-ins, helpful errors."""

from __future__ import annotations

import importlib
import textwrap

import pytest
import torch

import vtzoo
from vtzoo.operators.base import Embeddings, Operator, UnsupportedTask
from vtzoo.registry.operators import UnknownOperator, register_operator

PLUGIN_SOURCE = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import torch
    from vtzoo.modeling import PretrainedModel
    from vtzoo.operators.base import Embeddings, Operator, TEXT_EMBEDDING

    @dataclass
    class TinyConfig:
        scale: float = 1.0

    class TinyModel(PretrainedModel):
        family = "tiny-text"
        config_class = TinyConfig

    class TinyTextOperator(Operator):
        """Embeds a text as its length: enough to prove the plug-in runs through the shell."""
        tasks = frozenset({TEXT_EMBEDDING})
        model_class = TinyModel

        def embed_text(self, texts):
            return Embeddings(pooled=torch.tensor([[len(t) * self.config.scale] for t in texts]))
    '''
)


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A package declared through real entry-point metadata (a .dist-info folder) on sys.path."""
    package = tmp_path / "vtzoo_tiny_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN_SOURCE)
    dist = tmp_path / "vtzoo_tiny_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vtzoo-tiny-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[vtzoo.operators]\ntiny-text = vtzoo_tiny_plugin:TinyTextOperator\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "tiny-text"


def test_entry_point_plugin_is_listed_and_created(plugin_on_path):
    assert plugin_on_path in vtzoo.list_operators()
    op = vtzoo.create(plugin_on_path, weights="random", scale=2.0)
    assert op.name == "tiny-text"
    assert op.embed_text(["abc", "hello"]).pooled.tolist() == [[6.0], [10.0]]
    with pytest.raises(UnsupportedTask, match="tiny-text.*video-embedding"):
        op.embed_video(["a.mp4"])


def test_decorator_registration_and_duplicate_names():
    @register_operator("test-decorated")
    class Decorated(Operator):
        tasks = frozenset()

    assert "test-decorated" in vtzoo.list_operators()
    assert Decorated.name == "test-decorated"

    with pytest.raises(ValueError, match="already registered"):

        @register_operator("test-decorated")
        class Other(Operator):
            pass

    with pytest.raises(TypeError, match="Operator subclass"):
        register_operator("not-an-operator")(object)


def test_unknown_operator_suggests_closest_names():
    names = vtzoo.list_operators()
    assert "clip4clip" in names
    with pytest.raises(UnknownOperator, match=r"unknown operator 'clip4clp'.*Did you mean: clip4clip"):
        vtzoo.create("clip4clp")


def test_unknown_variant_suggests_closest_variants():
    with pytest.raises(UnknownOperator, match=r"unknown variant of 'clip4clip' 'vit-b32-zeroshoot'.*Did you mean: vit-b32-zeroshot"):
        vtzoo.create("clip4clip", "vit-b32-zeroshoot")


def test_embeddings_select_and_concat_keep_rows_aligned():
    a = Embeddings(pooled=torch.arange(4.0).view(2, 2), tokens=torch.ones(2, 3, 2), mask=torch.tensor([[1, 1, 0], [1, 0, 0]]),
                   extras={"ids": ["x", "y"]})
    b = Embeddings(pooled=torch.full((1, 2), 9.0), tokens=torch.ones(1, 5, 2), mask=torch.ones(1, 5, dtype=torch.long),
                   extras={"ids": ["z"]})
    both = Embeddings.concat([a, b])
    assert both.pooled.shape == (3, 2) and both.tokens.shape == (3, 5, 2)
    assert both.mask.tolist()[0] == [1, 1, 0, 0, 0]  # padding added by concat is masked out
    assert both.extras["ids"] == ["x", "y", "z"]
    second = both[1]
    assert second.pooled.tolist() == [[2.0, 3.0]] and second.extras["ids"] == ["y"]
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        Embeddings(pooled=torch.ones(3))
