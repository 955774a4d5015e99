"""Weight cards: one YAML file per published variant, validated when it is read.

A card states facts only: where the weights live (Hub repo pinned to a revision, files, sha256,
and/or the original release), how inputs must be prepared, the paper's numbers next to the ones
measured here (each with its protocol), and the licences of code and weights. A field nobody can
verify stays empty and says so in a ``note``.

Layout of a card (``vtzoo/weights_cards/<operator>/<variant>.yaml``)::

    operator: clip4clip
    variant: vit-b32-zeroshot
    description: one line
    config: {...}                         # family config fields for this variant
    weights:                              # optional: cards for configurations without weights
      format: transformers-clip          # which converter reads the files (vtzoo = no conversion)
      hub: {repo: org/name, revision: <40-hex commit>, files: [..], sha256: {file: hex}}
      original: {url: ..., format: ..., note: ...}
      note: ...
    preprocessing: {frames: 12, sampling: uniform, fps: 1, resize: 224, crop: 224, mean: [..], std: [..],
                    tokenizer: {repo: .., revision: ..}, max_length: 32}
    metrics:
      paper:    [{dataset, split, task, metric, value, source, protocol: {frames, sampling, resolution}}]
      measured: [same fields]
    license: {code: MIT, weights: MIT, non_commercial: false}
    source: {url: https://github.com/..., commit: <sha>, paper: https://arxiv.org/abs/...}
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vtzoo.operators.base import VtzooError

CARDS_PACKAGE = "vtzoo.weights_cards"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_METRIC_FIELDS = ("dataset", "split", "metric", "value", "source", "protocol")
_PROTOCOL_FIELDS = ("frames", "sampling", "resolution")
_NON_COMMERCIAL = re.compile(r"\bNC\b|non[- ]?commercial", re.IGNORECASE)


class CardError(VtzooError, ValueError):
    """A weight card that is malformed; the message names the file and the field."""

    def __init__(self, path: str | Path, field_name: str, problem: str):
        self.path = str(path)
        self.field = field_name
        super().__init__(f"weight card {self.path}: field '{field_name}': {problem}")


class NonCommercialWeightsWarning(UserWarning):
    """Weights whose licence forbids commercial use are being loaded."""


@dataclass(frozen=True)
class HubWeights:
    repo: str
    revision: str
    files: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightCard:
    path: str
    operator: str
    variant: str
    description: str
    config: dict[str, Any]
    weights_format: str | None
    hub: HubWeights | None
    original: dict[str, Any] | None
    weights_note: str | None
    preprocessing: dict[str, Any]
    metrics: dict[str, list[dict[str, Any]]]
    license: dict[str, Any]
    source: dict[str, Any]
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.operator}/{self.variant}"

    @property
    def non_commercial(self) -> bool:
        lic = self.license
        return bool(lic.get("non_commercial")) or bool(_NON_COMMERCIAL.search(str(lic.get("weights", ""))))

    @property
    def has_weights(self) -> bool:
        return self.hub is not None

    def warn_if_non_commercial(self) -> None:
        if self.non_commercial:
            warnings.warn(
                f"{self.name}: these weights are licensed {self.license.get('weights')!r} "
                "(non-commercial use only); check the licence before any commercial use.",
                NonCommercialWeightsWarning,
                stacklevel=3,
            )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.raw, sort_keys=False, allow_unicode=True)


def _require(data: dict, key: str, path: Path, prefix: str = "", kind: type | tuple = object) -> Any:
    name = f"{prefix}{key}"
    if not isinstance(data, dict) or key not in data or data[key] in (None, ""):
        raise CardError(path, name, "is required")
    value = data[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CardError(path, name, f"must be a {expected}, got {type(value).__name__}")
    return value


def _check_metrics(data: Any, path: Path) -> dict[str, list[dict[str, Any]]]:
    if data is None:
        return {"paper": [], "measured": []}
    if not isinstance(data, dict):
        raise CardError(path, "metrics", "must be a mapping with 'paper' and 'measured' lists")
    out: dict[str, list[dict[str, Any]]] = {}
    for group in ("paper", "measured"):
        entries = data.get(group) or []
        if not isinstance(entries, list):
            raise CardError(path, f"metrics.{group}", "must be a list")
        for i, entry in enumerate(entries):
            prefix = f"metrics.{group}[{i}]."
            for key in _METRIC_FIELDS:
                _require(entry, key, path, prefix)
            if not isinstance(entry["value"], (int, float)):
                raise CardError(path, f"{prefix}value", f"must be a number, got {entry['value']!r}")
            for key in _PROTOCOL_FIELDS:
                _require(entry["protocol"], key, path, f"{prefix}protocol.")
        out[group] = entries
    unknown = set(data) - {"paper", "measured"}
    if unknown:
        raise CardError(path, f"metrics.{sorted(unknown)[0]}", "unknown group (use 'paper' or 'measured')")
    return out


def _check_hub(data: Any, path: Path) -> HubWeights | None:
    if data is None:
        return None
    repo = _require(data, "repo", path, "weights.hub.", str)
    revision = str(_require(data, "revision", path, "weights.hub.", str))
    if not _COMMIT.match(revision):
        raise CardError(path, "weights.hub.revision", f"must pin a 40-hex commit, got {revision!r}")
    files = data.get("files") or []
    sha = data.get("sha256") or {}
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise CardError(path, "weights.hub.files", "must be a list of file names")
    if not isinstance(sha, dict):
        raise CardError(path, "weights.hub.sha256", "must map file names to sha256 hex digests")
    for fname, digest in sha.items():
        if not _SHA256.match(str(digest)):
            raise CardError(path, f"weights.hub.sha256.{fname}", f"is not a sha256 hex digest: {digest!r}")
    return HubWeights(repo=repo, revision=revision, files=tuple(files), sha256=dict(sha))


def parse_card(data: Any, path: str | Path) -> WeightCard:
    """Validate a card's parsed YAML; every error names ``path`` and the field."""
    path = Path(path)
    if not isinstance(data, dict):
        raise CardError(path, "<root>", "a card must be a YAML mapping")
    operator = _require(data, "operator", path, kind=str)
    variant = _require(data, "variant", path, kind=str)
    lic = _require(data, "license", path, kind=dict)
    _require(lic, "code", path, "license.", str)
    _require(lic, "weights", path, "license.", str)
    source = _require(data, "source", path, kind=dict)
    _require(source, "url", path, "source.", str)
    preprocessing = _require(data, "preprocessing", path, kind=dict)
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise CardError(path, "config", "must be a mapping")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict):
        raise CardError(path, "weights", "must be a mapping")
    hub = _check_hub(weights.get("hub"), path)
    if hub is not None:
        _require(weights, "format", path, "weights.", str)
    original = weights.get("original")
    if original is not None and not isinstance(original, dict):
        raise CardError(path, "weights.original", "must be a mapping")
    return WeightCard(
        path=str(path),
        operator=operator,
        variant=variant,
        description=str(data.get("description", "")),
        config=config,
        weights_format=weights.get("format"),
        hub=hub,
        original=original,
        weights_note=weights.get("note"),
        preprocessing=preprocessing,
        metrics=_check_metrics(data.get("metrics"), path),
        license=lic,
        source=source,
        raw=data,
    )


def load_card(path: str | Path) -> WeightCard:
    """Read and validate one card file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(path, "<file>", "does not exist") from None
    except yaml.YAMLError as exc:
        raise CardError(path, "<yaml>", f"is not valid YAML: {exc}") from None
    card = parse_card(data, path)
    expected = (path.parent.name, path.stem)
    if (card.operator, card.variant) != expected and path.parent.name != "":
        # The file's place is its name: a card copied without editing must not shadow another.
        if _is_packaged(path):
            raise CardError(path, "variant", f"card says {card.name!r} but lives at {expected[0]}/{expected[1]}.yaml")
    return card


def _is_packaged(path: Path) -> bool:
    try:
        return Path(str(resources.files(CARDS_PACKAGE))) in path.resolve().parents
    except (ModuleNotFoundError, TypeError):
        return False


@functools.lru_cache(maxsize=1)
def _packaged_cards() -> dict[str, WeightCard]:
    root = Path(str(resources.files(CARDS_PACKAGE)))
    cards: dict[str, WeightCard] = {}
    for file in sorted(root.glob("*/*.yaml")):
        card = load_card(file)
        cards[card.name] = card
    return cards


def list_cards(operator: str | None = None) -> list[str]:
    """Names (``operator/variant``) of every packaged card, optionally of one operator."""
    names = sorted(_packaged_cards())
    return [n for n in names if operator is None or n.startswith(operator + "/")]


def get_card(name: str) -> WeightCard:
    """The packaged card ``operator/variant``; an unknown name gets the closest suggestions."""
    cards = _packaged_cards()
    if name in cards:
        return cards[name]
    from vtzoo.registry.operators import UnknownOperator, _unknown_message

    raise UnknownOperator(_unknown_message("weight card", name, list(cards)))
