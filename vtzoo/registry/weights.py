"""Where weights come from and how they get into a model.

A weights spec is one of:

* ``None``: the card's published weights (Hub repo pinned to the card's revision);
* ``"random"``: no weights (seeded init), for tests and benchmarks;
* a card name ``"operator/variant"``: that card's published weights (and its config);
* ``"hf://org/repo[@revision]"``: a Hub repo, in vtzoo format or in the card's original format;
* a local directory holding ``config.json`` + ``model.safetensors`` (what ``save_pretrained`` writes);
* a checkpoint file: ``.safetensors`` read directly; ``.pth/.pt/.bin/.tar/.ckpt`` only through
  ``torch.load(weights_only=True)`` (never arbitrary unpickling), then converted by the family;
* a list of checkpoint files: a release in several files (e.g. a model and its feature
  extractor), read into one state dict.

Downloads (:mod:`vtzoo.registry.hub`) go through huggingface_hub into its normal cache, with
``HF_HUB_OFFLINE`` honoured at call time and the card's sha256 checked after download.
"""


from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from vtzoo.registry.cards import WeightCard
from vtzoo.registry.recognise import recognise
from vtzoo.registry.safe_pickle import load_checkpoint_tensors
# The errors (vtzoo.registry.errors) and the Hub client (vtzoo.registry.hub) are re-exported
# here, where users meet them.
from vtzoo.registry.errors import OfflineNotCachedError, WeightsError, WeightsIntegrityError, sha256_of  # noqa: F401
from vtzoo.registry.hub import (  # noqa: F401
    TOKENIZER_PATTERNS,
    download_hub_files,
    is_offline,
    load_tokenizer,
    parse_hf_uri,
    tokenizer_source,
)

if TYPE_CHECKING:  # pragma: no cover
    from vtzoo.modeling import PretrainedModel

StateDict = dict[str, torch.Tensor]
CONFIG_NAME = "config.json"  # vtzoo's folder format: config.json + model.safetensors
WEIGHTS_NAME = "model.safetensors"


class PartialStateDict(dict):
    """A converted state dict that leaves some modules to the model's ``init_like_original``.

    ``initialised`` names the key prefixes the original initialises itself (e.g. CLIP4Clip's heads
    when starting from plain CLIP): those keys may be missing; every other key must be present.
    """

    def __init__(self, tensors: StateDict, initialised: tuple[str, ...]):
        super().__init__(tensors)
        self.initialised = tuple(initialised)

VTZOO_FORMAT = "vtzoo"
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".tar", ".ckpt")
_WEIGHT_SUFFIXES = (".safetensors", *_CHECKPOINT_SUFFIXES)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
_MAX_LISTED_KEYS = 200


@dataclass
class ResolvedWeights:
    """What a weights spec turned into, before any conversion."""

    kind: str  # "random" | "vtzoo" | "checkpoint"
    files: list[Path] = field(default_factory=list)
    config: dict[str, Any] | None = None  # vtzoo format: the saved config
    format: str | None = None  # checkpoint: which converter reads it (None = detect)
    origin: str = ""
    card: WeightCard | None = None  # the card these weights were published with, if any
    folder: Path | None = None  # the (snapshot) folder the files came from

    def identity(self, seed: int) -> str:
        """What identifies these weights in a fingerprint: the card's pinned Hub revision, the
        files' sha256, or ``random:<seed>``."""
        if self.kind == "random":
            return f"random:{seed}"
        if self.card is not None and self.card.hub is not None and self.origin.startswith("hf://"):
            return f"hf:{self.card.hub.repo}@{self.card.hub.revision}"
        digest = hashlib.sha256("|".join(sha256_of(f) for f in sorted(self.files)).encode()).hexdigest()
        return f"sha256:{digest[:16]}"

    def state_dict(self, reader: Callable[[Path], StateDict] | None = None) -> StateDict:
        """Every file's tensors, read by ``reader`` (a family's own checkpoint layout) or
        :func:`read_state_dict`."""
        merged: StateDict = {}
        for file in self.files:
            merged.update((reader or read_state_dict)(file))
        return merged


# -- reading files ----------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> StateDict:
    """Read tensors from ``path`` without ever executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist")
    problem = not_a_checkpoint(path)
    if problem:
        raise WeightsError(f"checkpoint {path}: {problem}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(
                f"checkpoint {path}: a truncated or corrupt safetensors file ({exc}); download it again"
            ) from None
    # the originals' training scripts also write numbered files such as pytorch_model.bin.4
    numbered = path.suffix[1:].isdigit() and len(path.suffixes) > 1 and path.suffixes[-2] in _CHECKPOINT_SUFFIXES
    if path.suffix in _CHECKPOINT_SUFFIXES or numbered:
        # weights_only=True, plus inert stand-ins for the few config objects research checkpoints
        # pickle beside their tensors
        return unwrap_state_dict(load_checkpoint_tensors(path), path)
    raise WeightsError(
        f"checkpoint {path}: unknown file type {path.suffix!r} (use .safetensors, or .pth/.pt/.bin/.tar/.ckpt)"
    )


# What a failed download leaves behind instead of the weights: (first bytes, lower-cased) -> why.
_NOT_WEIGHTS = (
    ((b"<!doctype html", b"<html", b"<head"), "this file is an HTML page, not a checkpoint: was the download redirected?"),
    ((b"<?xml",), "this file is an XML document (a storage error page?), not a checkpoint: was the download refused?"),
    ((b"version https://git-lfs",), "this file is a Git LFS pointer, not the weights: fetch them with `git lfs pull`"),
    ((b"{",), "this file is JSON text, not a checkpoint (a config file or an error response?)"),
)


def not_a_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be weights at all (empty, a web page, an LFS pointer), judged from its
    first bytes; None when it may be."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes): was the download interrupted?"
    with path.open("rb") as handle:
        head = handle.read(256).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return next((why for starts, why in _NOT_WEIGHTS if head.startswith(starts)), None)


def unwrap_state_dict(obj: Any, path: str | Path) -> StateDict:
    """Find the tensor dict in common checkpoint wrappers (``state_dict``, ``model``, ``module.``)."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        if isinstance(obj, Mapping):
            detail = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:8])
            raise WeightsError(
                f"checkpoint {path} holds no flat dict of tensors (top-level entries: {detail}); expected "
                f"tensors at the top level or under one of {list(_WRAPPER_KEYS)}"
            )
        raise WeightsError(f"checkpoint {path} holds no flat dict of tensors (got {type(obj).__name__})")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):  # saved from a DataParallel wrapper
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd




def prefetch(card_name_or_spec: str) -> Path:
    """Download a card's pinned weight files (and its tokenizer) into the Hub cache, for offline use.

    ``card_name_or_spec`` is a card name (``operator/variant``) or ``hf://org/repo[@revision]``.
    Files with a sha256 in the card are verified. The tokenizer is fetched when the card's
    ``preprocessing.tokenizer`` is a mapping with a ``repo`` (pinned by ``revision`` when given).
    Returns the weights' snapshot folder; prints nothing.
    """
    if card_name_or_spec.startswith("hf://"):
        resolved = _resolve_hf(*parse_hf_uri(card_name_or_spec), card=None, origin=card_name_or_spec)
        assert resolved.folder is not None
        return resolved.folder
    from vtzoo.registry.cards import get_card

    card = get_card(card_name_or_spec)
    if card.hub is None:
        note = f" ({card.weights_note})" if card.weights_note else ""
        raise WeightsError(f"{card.name} has no published Hub weights to download{note}")
    folder, _ = download_hub_files(card.hub.repo, card.hub.revision, list(card.hub.files) or None, card.hub.sha256)
    tokenizer = tokenizer_source(card.preprocessing)
    if tokenizer is not None:
        repo, revision, files = tokenizer
        download_hub_files(repo, revision, files or None, allow_patterns=None if files else TOKENIZER_PATTERNS)
    return folder


# -- resolving a spec -------------------------------------------------------------------------
def resolve_weights(spec: Any, card: WeightCard | None) -> ResolvedWeights:
    """Turn a weights spec into local files (downloading from the Hub if needed)."""
    if isinstance(spec, str) and spec == "random":
        return ResolvedWeights(kind="random", origin="random")
    if spec is None:
        if card is None or card.hub is None:
            what = card.name if card else "this model"
            note = f" ({card.weights_note})" if card is not None and card.weights_note else ""
            raise WeightsError(
                f"{what} has no published weights{note}: pass weights=<hf://org/repo@rev | directory | "
                "checkpoint file>, or weights='random' for an untrained model"
            )
        return _resolve_card_hub(card)
    if isinstance(spec, str) and spec.startswith("hf://"):
        return _resolve_hf(*parse_hf_uri(spec), card=card, origin=spec)
    if isinstance(spec, (list, tuple)):
        return _resolve_files(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise WeightsError(f"weights {spec!r}: expected None, 'random', a card name, hf://..., a folder, a file or a list of files")
    path = Path(spec)
    if path.is_dir():
        return _resolve_local_folder(path)
    if path.is_file():
        problem = not_a_checkpoint(path)  # before any model is built for it
        if problem:
            raise WeightsError(f"checkpoint {path}: {problem}")
        return ResolvedWeights(kind="checkpoint", files=[path], format=None, origin=str(path))
    return _resolve_card_name(str(spec))


def _resolve_files(specs: Sequence[Any]) -> ResolvedWeights:
    """The files of a release in several parts, read (and converted) as one state dict."""
    if not specs or not all(isinstance(s, (str, os.PathLike)) for s in specs):
        raise WeightsError(f"weights {list(specs)!r}: a list of weights must name one or more checkpoint files")
    files = [Path(s) for s in specs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise WeightsError(f"weights: checkpoint file(s) not found: {', '.join(missing)}")
    return ResolvedWeights(kind="checkpoint", files=files, origin=", ".join(str(f) for f in files))


def _resolve_card_name(name: str) -> ResolvedWeights:
    from vtzoo.registry.cards import get_card, list_cards

    known = list_cards()
    if name in known:
        return resolve_weights(None, get_card(name))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean the card {', '.join(close)}?" if close else ""
    raise WeightsError(
        f"weights {name!r}: no such file or directory, not hf://org/repo[@revision], and not a weight card.{hint}"
    )


def _resolve_card_hub(card: WeightCard) -> ResolvedWeights:
    hub = card.hub
    assert hub is not None
    origin = f"hf://{hub.repo}@{hub.revision} ({card.name})"
    folder, paths = download_hub_files(hub.repo, hub.revision, list(hub.files) or None, hub.sha256)
    if card.weights_format == VTZOO_FORMAT:
        resolved = _resolve_folder(folder, card, origin=origin, paths=paths)
    else:
        weight_files = _weight_files(paths)
        if not weight_files:
            raise WeightsError(f"{card.path}: weights.hub.files names no weight file ({', '.join(hub.files)})")
        resolved = ResolvedWeights(
            kind="checkpoint", files=weight_files, format=card.weights_format, origin=origin, folder=folder
        )
    resolved.card = card
    return resolved


def _resolve_hf(repo: str, revision: str | None, card: WeightCard | None, origin: str) -> ResolvedWeights:
    hub = card.hub if card is not None else None
    if hub is not None and hub.repo == repo:
        # The card's own repo (maybe at another revision; none means main, as anywhere else): its
        # file list applies; its sha256 only at the revision the card pins.
        sha = hub.sha256 if revision == hub.revision else {}
        folder, paths = download_hub_files(repo, revision, list(hub.files) or None, sha)
        resolved = _resolve_folder(folder, card, origin=origin, paths=paths)
        resolved.card = card  # the card's weights, so its licence applies
        return resolved
    # Unknown repo: config + safetensors first; pickled checkpoints only if it has no safetensors.
    folder, paths = download_hub_files(repo, revision, allow_patterns=["*.json", "*.safetensors"])
    if not any(p.suffix == ".safetensors" for p in paths):
        folder, paths = download_hub_files(repo, revision, allow_patterns=[f"*{s}" for s in _CHECKPOINT_SUFFIXES])
    return _resolve_folder(folder, card, origin=origin, paths=paths)


def _weight_files(paths: Sequence[Path]) -> list[Path]:
    weight_files = [p for p in paths if p.suffix in _WEIGHT_SUFFIXES]
    # prefer safetensors when a repo ships both formats of the same weights
    safes = [p for p in weight_files if p.suffix == ".safetensors"]
    return safes or weight_files


def _resolve_local_folder(folder: Path) -> ResolvedWeights:
    """A folder the user named: vtzoo's own (config.json + model.safetensors), or checkpoint files
    whose format is detected (the card's format describes its Hub files, not this folder)."""
    if (folder / WEIGHTS_NAME).is_file() and not (folder / CONFIG_NAME).is_file():
        raise WeightsError(
            f"weights {folder}: the folder has {WEIGHTS_NAME} but no {CONFIG_NAME} (a folder written by "
            f"save_pretrained has both); to read the file as a checkpoint, pass {folder / WEIGHTS_NAME} itself"
        )
    return _resolve_folder(folder, None, origin=str(folder))


def _resolve_folder(
    folder: Path, card: WeightCard | None, origin: str, paths: list[Path] | None = None
) -> ResolvedWeights:
    config_file, weights_file = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if config_file.is_file() and weights_file.is_file():
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as exc:
            raise WeightsError(f"weights {origin}: {config_file} is not valid JSON: {exc}") from None
        if isinstance(config, dict) and "vtzoo_family" in config:
            return ResolvedWeights(kind="vtzoo", files=[weights_file], config=config, origin=origin, folder=folder)
    # Not a vtzoo folder: a folder in an original/third-party layout (e.g. transformers CLIP).
    files = paths or sorted(p for p in folder.iterdir() if p.is_file())
    weight_files = _weight_files(files)
    if not weight_files:
        raise WeightsError(f"weights {origin}: no {WEIGHTS_NAME} or checkpoint file found in {folder}")
    fmt = card.weights_format if card is not None else None
    return ResolvedWeights(kind="checkpoint", files=weight_files, format=fmt, origin=origin, folder=folder)


# -- loading into a model ---------------------------------------------------------------------
def _listing(title: str, keys: Sequence[str]) -> str:
    shown = list(keys[:_MAX_LISTED_KEYS])
    more = f"\n  ... and {len(keys) - len(shown)} more" if len(keys) > len(shown) else ""
    return f"{title} ({len(keys)}):\n  " + "\n  ".join(shown) + more


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: StateDict, origin: str = "", strict: bool = True, may_miss: tuple[str, ...] = ()
) -> None:
    """``load_state_dict`` whose error lists every missing and unexpected key (and shape clash).

    Floating tensors are cast to the model's dtype (fp16 releases load into fp32 models).
    """
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state_dict) if not k.startswith(may_miss or ("\0",)))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    problems = []
    if mismatched:
        problems.append(_listing("shape mismatch", mismatched))
    if strict and missing:
        problems.append(_listing("missing keys", missing))
    if strict and unexpected:
        problems.append(_listing("unexpected keys", unexpected))
    if problems:
        source = f" {origin}" if origin else ""
        raise WeightsError(f"cannot load weights{source} into {type(model).__name__}:\n" + "\n".join(problems))
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items() if k in own}
    model.load_state_dict(cast, strict=strict and not may_miss)


def config_from_dict(config_class: type, values: Mapping[str, Any], origin: str) -> Any:
    """Build a config dataclass, naming unknown fields instead of a bare TypeError.

    JSON has no tuples or nested dataclasses: lists go back to tuples where the field's default
    is a tuple, and dicts back to dataclasses where the field's type is one.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(fields) - {"vtzoo_family", "vtzoo_format"})
    if unknown:
        raise WeightsError(f"{origin}: unknown config field(s) {unknown} for {config_class.__name__}")
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # an unresolvable annotation only costs the nested-dataclass coercion
        hints = {}
    kwargs = {
        name: _coerce(fields[name], hints.get(name), value, origin) for name, value in values.items() if name in fields
    }
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{origin}: invalid config for {config_class.__name__}: {exc}") from None


def _coerce(spec: dataclasses.Field, hint: Any, value: Any, origin: str) -> Any:
    if isinstance(value, Mapping) and isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, f"{origin} ({spec.name})")
    if isinstance(value, list):
        default = spec.default
        if default is dataclasses.MISSING and spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        if isinstance(default, tuple) or typing.get_origin(hint) is tuple:
            return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def merge_config(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``changes``; a mapping in both is merged key by key, so a nested config
    given in part (``clip={"vision_layers": 2}``) keeps the rest of ``base``'s."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_model(
    model_class: type["PretrainedModel"],
    card: WeightCard | None,
    weights: Any,
    overrides: Mapping[str, Any] | None = None,
    strict: bool = True,
    seed: int = 0,
) -> tuple["PretrainedModel", ResolvedWeights]:
    """Resolve ``weights``, build ``model_class(config)`` and load the (converted) state dict.

    The one loading path of every family. The config is the card's (or, for
    ``weights="operator/variant"``, that card's), updated by a vtzoo folder's saved config, then by
    ``overrides`` (nested configs merged field by field, see :func:`merge_config`). The model is constructed under ``torch.manual_seed(seed)`` (in a forked RNG), so
    ``weights="random"`` gives the same weights in any process. Original checkpoints are read by
    the family's ``read_checkpoint`` (multi-network, nested or extension-less releases) and
    converted by its ``CONVERTERS``; a checkpoint of unknown format is tried as vtzoo keys first,
    then with each converter, and the error lists what did not fit.
    """
    family, converters = model_class.family, model_class.converters()
    resolved = resolve_weights(weights, card)
    weights_card = resolved.card or card
    if card is not None and resolved.card is not None and resolved.card.operator != card.operator:
        raise WeightsError(
            f"weights {resolved.card.name!r} belong to the {resolved.card.operator!r} operator, "
            f"not {card.operator!r}"
        )
    values: dict[str, Any] = dict(weights_card.config if weights_card else {})
    if resolved.kind == "vtzoo":
        saved = dict(resolved.config or {})
        if saved.get("vtzoo_family", family) != family:
            raise WeightsError(
                f"weights {resolved.origin} hold a {saved['vtzoo_family']!r} model (config.json: vtzoo_family), "
                f"but a {family!r} model was expected; load them with the {saved['vtzoo_family']} operator"
            )
        values = merge_config(values, saved)
    values = merge_config(values, overrides or {})
    config = config_from_dict(model_class.config_class, values, weights_card.path if weights_card else family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    if resolved.kind == "random":
        return model, resolved
    if resolved.card is not None:  # the card's published weights: its licence applies
        resolved.card.warn_if_non_commercial()
    reader = model_class.checkpoint_reader() if resolved.kind == "checkpoint" else None
    state_dict = resolved.state_dict(reader)
    if resolved.kind == "vtzoo" or resolved.format == VTZOO_FORMAT:
        load_state_dict_strict(model, state_dict, resolved.origin, strict)
        return model, resolved
    if resolved.format is not None:
        if resolved.format not in converters:
            raise WeightsError(
                f"weights {resolved.origin}: format {resolved.format!r} is not one {family} can convert "
                f"(known: {', '.join(sorted(converters)) or 'none'})"
            )
        _load_converted(model, converters[resolved.format](state_dict, config), resolved.origin, strict, seed)
        return model, resolved
    return model, _load_detected(family, model, config, state_dict, converters, resolved, strict, seed)


def _load_converted(model: "PretrainedModel", converted: StateDict, origin: str, strict: bool, seed: int) -> None:
    """Load a converter's output; a :class:`PartialStateDict` leaves its prefixes to the model."""
    if not isinstance(converted, PartialStateDict):
        load_state_dict_strict(model, converted, origin, strict)
        return
    load_state_dict_strict(model, converted, origin, strict, may_miss=converted.initialised)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.init_like_original(converted)


def _load_detected(family, model, config, state_dict, converters, resolved, strict, seed) -> ResolvedWeights:
    own = model.state_dict()
    if set(state_dict) == set(own) and all(state_dict[k].shape == own[k].shape for k in own):
        load_state_dict_strict(model, state_dict, resolved.origin, strict)
        resolved.format = VTZOO_FORMAT
        return resolved
    failures = []
    for name, convert in converters.items():
        try:
            converted = convert(state_dict, config)
            _load_converted(model, converted, resolved.origin, strict, seed)
        except (WeightsError, KeyError, ValueError, RuntimeError) as exc:
            failures.append(f"as {name!r}: {exc}")
            continue
        resolved.format = name
        return resolved
    try:  # the keys as they are, so the error also says how far they are from vtzoo's own
        load_state_dict_strict(model, state_dict, resolved.origin, strict)
    except WeightsError as exc:
        failures.append(f"as vtzoo keys: {exc}")
    else:
        resolved.format = VTZOO_FORMAT
        return resolved
    recognised = recognise(state_dict, resolved.files)
    if recognised is not None and family not in recognised.family.models:
        raise WeightsError(
            f"checkpoint {resolved.origin}: {recognised.describe()}, not a {family} one: load it with the "
            f"{recognised.family.operator} operator"
        )
    sample = ", ".join(sorted(state_dict)[:5])
    raise WeightsError(
        f"weights {resolved.origin} do not look like a {family} checkpoint (first keys: {sample}).\n"
        + "\n".join(failures)
    )
