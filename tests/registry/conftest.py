"""A tiny PretrainedModel family and helpers shared by the registry tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from vtzoo.modeling import PretrainedModel


@dataclass
class TinyConfig:
    dim: int = 3
    hidden: int = 5
    scale: tuple[float, float] = (1.0, 2.0)


def convert_original(state_dict: dict[str, torch.Tensor], config: TinyConfig) -> dict[str, torch.Tensor]:
    """The "original" release stores ``enc``/``dec`` weights transposed, as (in, out)."""
    return {
        "encoder.weight": state_dict["enc.w"].t(),
        "encoder.bias": state_dict["enc.b"],
        "head.weight": state_dict["dec.w"].t(),
        "head.bias": state_dict["dec.b"],
    }


class TinyModel(PretrainedModel):
    family = "tiny"
    config_class = TinyConfig

    @classmethod
    def converters(cls):  # a family outside vtzoo/operators: no convert.py beside it to find
        return {"original": convert_original}

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.encoder = torch.nn.Linear(config.dim, config.hidden)
        self.head = torch.nn.Linear(config.hidden, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x))) * self.config.scale[1]


class OtherModel(TinyModel):
    family = "other"


def tiny_model(seed: int) -> TinyModel:
    torch.manual_seed(seed)
    return TinyModel(TinyConfig())


def saved_files(model: PretrainedModel, folder: Path) -> dict[str, Path]:
    """``save_pretrained`` into ``folder``; returns {file name: path} ready for ``add_commit``."""
    model.save_pretrained(folder)
    return {p.name: p for p in folder.iterdir()}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def card_dict(**changes) -> dict:
    """A valid card as parsed YAML; ``changes`` replace top-level fields."""
    card = {
        "operator": "tiny",
        "variant": "v1",
        "description": "two linear layers",
        "config": {"dim": 3, "hidden": 5},
        "preprocessing": {"frames": 4, "sampling": "uniform", "resize": 32, "crop": 32},
        "metrics": {
            "paper": [
                {
                    "dataset": "MSR-VTT",
                    "split": "1k-A test",
                    "task": "text-to-video",
                    "metric": "R@1",
                    "value": 44.5,
                    "source": "paper, Table 2",
                    "protocol": {"frames": 12, "sampling": "uniform", "resolution": 224},
                }
            ],
            "measured": [],
        },
        "license": {"code": "MIT", "weights": "MIT"},
        "source": {"url": "https://example.org/tiny", "commit": "0123456789abcdef0123456789abcdef01234567"},
    }
    card.update(changes)
    return card


def write_card(folder: Path, data: dict) -> Path:
    """Write ``data`` to ``folder/<operator>/<variant>.yaml`` (the packaged layout)."""
    path = folder / str(data.get("operator", "tiny")) / f"{data.get('variant', 'v1')}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def repo_id() -> str:
    """A repo name no other test uses (the session's Hub server is shared)."""
    return f"org/tiny-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cards_dir(tmp_path, monkeypatch) -> Path:
    """Make a temporary folder the packaged cards root, for get_card/list_cards/prefetch."""
    import vtzoo.registry.cards as cards

    root = tmp_path / "cards"
    root.mkdir()
    monkeypatch.setattr(cards, "cards_root", lambda: root)
    return root


@pytest.fixture
def tiny():
    """This module: TinyModel, TinyConfig, OtherModel and the helpers above (tests are not a package)."""
    import sys

    return sys.modules[__name__]
