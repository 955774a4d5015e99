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
                    tokenizer: {repo: .., revision: <40-hex>, files: [..]}, max_length: 32}
                                          # tokenizer may also be a plain name (a tokenizer vtzoo ships)
    metrics:
      paper:    [{dataset, split, task, metric, value, source, protocol: {frames, sampling, resolution}}]
      measured: [same fields]
    license: {code: MIT, weights: MIT, non_commercial: false}
    source: {url: https://github.com/..., commit: <sha>, paper: https://arxiv.org/abs/...}
    note: ...                             # what could not be verified, and why

Required: operator, variant, license.code, license.weights, source.url, preprocessing; with
weights.hub also weights.format, and hub.revision must pin a 40-hex commit. Every metrics entry
needs dataset, split, metric, value (a number), source and protocol.{frames, sampling,
resolution}. Unknown top-level, ``weights`` and ``weights.hub`` fields are refused (typos would
otherwise silently drop facts), and so is a key written twice; any mapping may carry a ``note``.
"""

from __future__ import annotations

import difflib
import functools
import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vtzoo.errors import UnknownOperator, VtzooError, unknown_name_message

CARDS_PACKAGE = "vtzoo.weights_cards"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_METRIC_FIELDS = ("dataset", "split", "metric", "value", "source", "protocol")
_PROTOCOL_FIELDS = ("frames", "sampling", "resolution")
_SOURCE_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_NON_COMMERCIAL = re.compile(r"\bNC\b|non[- ]?commercial", re.IGNORECASE)
_TOP_LEVEL = (
    "operator", "variant", "description", "config", "weights", "preprocessing", "metrics", "license", "source", "note",
)
_WEIGHTS_FIELDS = ("format", "hub", "original", "note")
_HUB_FIELDS = ("repo", "revision", "files", "sha256", "note")


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

    def summary(self) -> str:
        """One line for listings: name, weights availability, licences, description."""
        where = f"hf://{self.hub.repo}@{self.hub.revision[:12]}" if self.hub else "no published weights"
        short = lambda text: str(text).split(" (")[0]  # noqa: E731 - the licence, not its explanation
        lic = f"code {short(self.license.get('code'))}, weights {short(self.license.get('weights'))}"
        nc = " [non-commercial]" if self.non_commercial else ""
        return f"{self.name}  {where}  ({lic}){nc}  {self.description}".rstrip()


def _require(data: Any, key: str, path: Path, prefix: str = "", kind: type | tuple = object) -> Any:
    name = f"{prefix}{key}"
    if not isinstance(data, dict):
        raise CardError(path, prefix.rstrip(".") or "<root>", f"must be a mapping (holding {key!r})")
    if key not in data or data[key] is None or data[key] == "":
        raise CardError(path, name, "is required")
    value = data[key]
    kinds = _as_tuple(kind)
    # YAML `true` is an int to Python: refuse it where a number is expected
    is_bool_for_number = isinstance(value, bool) and bool not in kinds and (int in kinds or float in kinds)
    if not isinstance(value, kind) or is_bool_for_number:
        raise CardError(path, name, f"must be a {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def _as_tuple(kind: type | tuple) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple) -> str:
    names = {dict: "mapping", str: "string", list: "list", int: "integer", float: "number", bool: "boolean"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _reject_unknown(data: dict, allowed: tuple[str, ...], path: Path, prefix: str = "") -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
            raise CardError(path, f"{prefix}{key}", f"unknown field{hint}")


def _check_metrics(data: Any, path: Path) -> dict[str, list[dict[str, Any]]]:
    if data is None:
        return {"paper": [], "measured": []}
    if not isinstance(data, dict):
        raise CardError(path, "metrics", "must be a mapping with 'paper' and 'measured' lists")
    _reject_unknown(data, ("paper", "measured", "note"), path, "metrics.")
    out: dict[str, list[dict[str, Any]]] = {}
    for group in ("paper", "measured"):
        entries = data.get(group) or []
        if not isinstance(entries, list):
            raise CardError(path, f"metrics.{group}", "must be a list")
        for i, entry in enumerate(entries):
            prefix = f"metrics.{group}[{i}]."
            if not isinstance(entry, dict):
                raise CardError(path, prefix.rstrip("."), "must be a mapping")
            for key in _METRIC_FIELDS:
                _require(entry, key, path, prefix)
            _require(entry, "value", path, prefix, (int, float))
            _require(entry, "protocol", path, prefix, dict)
            for key in _PROTOCOL_FIELDS:
                _require(entry["protocol"], key, path, f"{prefix}protocol.")
        out[group] = entries
    return out


def _check_hub(data: Any, path: Path) -> HubWeights | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CardError(path, "weights.hub", "must be a mapping {repo, revision, files, sha256}")
    _reject_unknown(data, _HUB_FIELDS, path, "weights.hub.")
    repo = _require(data, "repo", path, "weights.hub.", str)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise CardError(path, "weights.hub.repo", f"must be 'org/name', got {repo!r}")
    revision = _require(data, "revision", path, "weights.hub.", str)
    if not _COMMIT.match(revision):
        raise CardError(path, "weights.hub.revision", f"must pin a 40-hex commit sha, got {revision!r}")
    files = data.get("files") or []
    sha = data.get("sha256") or {}
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise CardError(path, "weights.hub.files", "must be a list of file names")
    if not isinstance(sha, dict):
        raise CardError(path, "weights.hub.sha256", "must map file names to sha256 hex digests")
    for fname, digest in sha.items():
        if not _SHA256.match(str(digest)):
            raise CardError(path, f"weights.hub.sha256.{fname}", f"is not a lowercase sha256 hex digest: {digest!r}")
        if files and fname not in files:
            raise CardError(path, f"weights.hub.sha256.{fname}", "names a file that is not in weights.hub.files")
    return HubWeights(repo=repo, revision=revision, files=tuple(files), sha256=dict(sha))


def _check_license(data: Any, path: Path) -> dict[str, Any]:
    lic = _require({"license": data}, "license", path, kind=dict)
    _require(lic, "code", path, "license.", str)
    _require(lic, "weights", path, "license.", str)
    if "non_commercial" in lic and not isinstance(lic["non_commercial"], bool):
        raise CardError(path, "license.non_commercial", f"must be true or false, got {lic['non_commercial']!r}")
    return lic


def _check_source(data: Any, path: Path) -> dict[str, Any]:
    source = _require({"source": data}, "source", path, kind=dict)
    _require(source, "url", path, "source.", str)
    commit = source.get("commit")
    if commit is not None and not _SOURCE_COMMIT.match(str(commit)):
        raise CardError(path, "source.commit", f"must be a git commit sha (7-40 hex), got {commit!r}")
    return source


def _check_preprocessing(data: Any, path: Path) -> dict[str, Any]:
    pre = _require({"preprocessing": data}, "preprocessing", path, kind=dict)
    tokenizer = pre.get("tokenizer")
    if isinstance(tokenizer, dict):
        _require(tokenizer, "repo", path, "preprocessing.tokenizer.", str)
        revision = tokenizer.get("revision")
        if revision is not None and not _COMMIT.match(str(revision)):
            raise CardError(path, "preprocessing.tokenizer.revision", f"must pin a 40-hex commit sha, got {revision!r}")
        files = tokenizer.get("files")
        if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
            raise CardError(path, "preprocessing.tokenizer.files", "must be a list of file names")
    elif tokenizer is not None and not isinstance(tokenizer, str):
        raise CardError(path, "preprocessing.tokenizer", "must be a name or a mapping {repo, revision}")
    return pre


def parse_card(data: Any, path: str | Path) -> WeightCard:
    """Validate a card's parsed YAML; every error names ``path`` and the field."""
    path = Path(path)
    if not isinstance(data, dict):
        raise CardError(path, "<root>", "a card must be a YAML mapping")
    _reject_unknown(data, _TOP_LEVEL, path)
    operator = _require(data, "operator", path, kind=str)
    variant = _require(data, "variant", path, kind=str)
    if "/" in variant:
        raise CardError(path, "variant", f"must not contain '/', got {variant!r}")
    lic = _check_license(data.get("license"), path)
    source = _check_source(data.get("source"), path)
    preprocessing = _check_preprocessing(data.get("preprocessing"), path)
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise CardError(path, "config", "must be a mapping")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict):
        raise CardError(path, "weights", "must be a mapping")
    _reject_unknown(weights, _WEIGHTS_FIELDS, path, "weights.")
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
        description=str(data.get("description") or ""),
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


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int):
        self.key, self.line = key, line


class _CardLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key written twice (YAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _DuplicateKey(str(key), key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_card(path: str | Path) -> WeightCard:
    """Read (``yaml.SafeLoader``, duplicate keys refused) and validate one card file."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CardLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise CardError(path, "<file>", "does not exist") from None
    except _DuplicateKey as dup:
        raise CardError(path, dup.key, f"is written twice (second time on line {dup.line})") from None
    except yaml.YAMLError as exc:
        raise CardError(path, "<yaml>", f"is not valid YAML: {exc}") from None
    card = parse_card(data, path)
    expected = (path.parent.name, path.stem)
    if (card.operator, card.variant) != expected and _is_packaged(path):
        # A packaged card's place is its name: a card copied without editing must not shadow another.
        raise CardError(path, "variant", f"card says {card.name!r} but lives at {expected[0]}/{expected[1]}.yaml")
    return card


def cards_root() -> Path:
    """The folder of packaged cards (``<operator>/<variant>.yaml``)."""
    return Path(str(resources.files(CARDS_PACKAGE)))


def _is_packaged(path: Path) -> bool:
    try:
        return cards_root().resolve() in path.resolve().parents
    except (ModuleNotFoundError, TypeError):
        return False


def list_cards(operator: str | None = None) -> list[str]:
    """Names (``operator/variant``) of every packaged card, optionally of one operator.

    Names come from the file layout, so listing never fails on one broken card; use
    :func:`all_cards` to read and validate them all.
    """
    names = sorted(f"{file.parent.name}/{file.stem}" for file in cards_root().glob("*/*.yaml"))
    return [n for n in names if operator is None or n.startswith(operator + "/")]


@functools.lru_cache(maxsize=None)
def _load_cached(path: str, mtime_ns: int) -> WeightCard:
    return load_card(path)


def get_card(name: str) -> WeightCard:
    """The packaged card ``operator/variant``; an unknown name gets the closest suggestions."""
    known = list_cards()
    if name in known:
        path = cards_root() / f"{name}.yaml"
        return _load_cached(str(path), path.stat().st_mtime_ns)
    raise UnknownOperator(unknown_name_message("weight card", name, known))


def all_cards(operator: str | None = None) -> list[WeightCard]:
    """Every packaged card, read and validated (the first broken one raises :class:`CardError`)."""
    return [get_card(name) for name in list_cards(operator)]
