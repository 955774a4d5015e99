"""Where weights come from and how they get into a model.

A weights spec is one of:

* ``None``: the card's published weights (Hub repo pinned to the card's revision);
* ``"random"``: no weights (seeded init), for tests and benchmarks;
* a card name ``"operator/variant"``: that card's published weights;
* ``"hf://org/repo[@revision]"``: a Hub repo, in vtzoo format or in the card's original format;
* a local directory holding ``config.json`` + ``model.safetensors`` (what ``save_pretrained`` writes);
* a checkpoint file: ``.safetensors`` read directly; ``.pth/.pt/.bin/.tar`` only through
  ``torch.load(weights_only=True)`` (never arbitrary unpickling), then converted by the family.

Downloads go through huggingface_hub (normal cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``), and
files whose sha256 the card gives are checked after download.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from vtzoo.operators.base import VtzooError
from vtzoo.registry.cards import WeightCard

StateDict = dict[str, torch.Tensor]
Converter = Callable[[StateDict, Any], StateDict]

VTZOO_FORMAT = "vtzoo"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".tar", ".ckpt")


class WeightsError(VtzooError, RuntimeError):
    """Weights that cannot be found, read, verified or loaded."""


class WeightsIntegrityError(WeightsError):
    """A downloaded file whose sha256 differs from the one its card gives."""


class OfflineNotCachedError(WeightsError):
    """Offline (``HF_HUB_OFFLINE=1`` or no network) and the files are not in the cache."""


@dataclass
class ResolvedWeights:
    """What a weights spec turned into, before any conversion."""

    kind: str  # "random" | "vtzoo" | "checkpoint"
    files: list[Path] = field(default_factory=list)
    config: dict[str, Any] | None = None  # vtzoo format: the saved config
    format: str | None = None  # checkpoint: which converter reads it (None = detect)
    origin: str = ""

    def state_dict(self) -> StateDict:
        merged: StateDict = {}
        for file in self.files:
            merged.update(read_state_dict(file))
        return merged


# -- reading files ----------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> StateDict:
    """Read tensors from ``path`` without ever executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"checkpoint {path} is not a readable safetensors file: {exc}") from None
    if path.suffix in _CHECKPOINT_SUFFIXES or path.name.endswith(".pth.tar"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(
                f"checkpoint {path} could not be read with torch.load(weights_only=True); vtzoo never "
                f"unpickles arbitrary objects. Cause: {exc}"
            ) from None
        return unwrap_state_dict(obj, path)
    raise WeightsError(f"checkpoint {path}: unknown file type {path.suffix!r} (use .safetensors, .pth, .pt or .bin)")


def unwrap_state_dict(obj: Any, path: str | Path) -> StateDict:
    """Find the tensor dict in common checkpoint wrappers (``state_dict``, ``model``, ``module.``)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"checkpoint {path} holds no flat dict of tensors (got {type(obj).__name__})")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):  # saved from a DataParallel wrapper
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- resolving a spec -------------------------------------------------------------------------
def parse_hf_uri(uri: str) -> tuple[str, str | None]:
    """``hf://org/repo@rev`` -> (``org/repo``, ``rev``)."""
    body = uri[len("hf://") :]
    repo, _, revision = body.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise WeightsError(f"weights {uri!r}: expected hf://org/repo[@revision]")
    return repo, revision or None


def download_hub_files(
    repo: str,
    revision: str | None,
    files: list[str] | tuple[str, ...] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> tuple[Path, list[Path]]:
    """Fetch ``files`` (or the whole snapshot) of ``repo@revision`` into the Hub cache.

    Returns the snapshot folder and the local paths. Files with a sha256 in ``sha256`` are
    verified; a mismatch raises :class:`WeightsIntegrityError` naming the file.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo}@{revision or 'main'}"
    try:
        if files:
            paths = [Path(hf_hub_download(repo, f, revision=revision)) for f in files]
            folder = paths[0].parent
            for f, p in zip(files, paths):
                # hf_hub_download keeps subfolders: the snapshot root is above them
                folder = Path(str(p)[: -len(f)]) if str(p).endswith(f) else folder
        else:
            folder = Path(snapshot_download(repo, revision=revision))
            paths = sorted(p for p in folder.rglob("*") if p.is_file())
    except LocalEntryNotFoundError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise OfflineNotCachedError(
            f"weights {where} are not in the local cache and {reason}. Fetch them once with network "
            f"access (`vtzoo download <card>` or `huggingface-cli download {repo} --revision {revision or 'main'}`)."
            f" Cause: {exc}"
        ) from None
    except RevisionNotFoundError:
        raise WeightsError(f"weights {where}: revision {revision!r} does not exist in {repo}") from None
    except RepositoryNotFoundError:
        raise WeightsError(f"weights {where}: repository {repo!r} does not exist (or needs a token)") from None
    except EntryNotFoundError as exc:
        raise WeightsError(f"weights {where}: file missing in the repository: {exc}") from None
    for name, expected in (sha256 or {}).items():
        local = folder / name
        if local.is_file():
            actual = sha256_of(local)
            if actual != expected:
                raise WeightsIntegrityError(
                    f"weights {where}: file {name} has sha256 {actual}, but the card expects {expected}; "
                    "refusing to load it (delete it from the Hub cache to download it again)"
                )
    return folder, paths


def resolve_weights(spec: Any, card: WeightCard | None) -> ResolvedWeights:
    """Turn a weights spec into local files (downloading from the Hub if needed)."""
    if spec == "random":
        return ResolvedWeights(kind="random", origin="random")
    if spec is None:
        if card is None or card.hub is None:
            what = card.name if card else "this operator"
            note = f" ({card.weights_note})" if card is not None and card.weights_note else ""
            raise WeightsError(
                f"{what} has no published weights{note}: pass weights=<hf://org/repo@rev | directory | "
                "checkpoint file>, or weights='random' for an untrained model"
            )
        return _resolve_card_hub(card)
    if isinstance(spec, str) and spec.startswith("hf://"):
        repo, revision = parse_hf_uri(spec)
        folder, paths = download_hub_files(repo, revision)
        return _resolve_folder(folder, card, origin=spec, paths=paths)
    if isinstance(spec, str) and "/" in spec and not os.path.exists(spec) and not spec.startswith((".", "/")):
        from vtzoo.registry.cards import get_card

        return resolve_weights(None, get_card(spec))
    path = Path(spec)
    if path.is_dir():
        return _resolve_folder(path, card, origin=str(path))
    if path.is_file():
        return ResolvedWeights(kind="checkpoint", files=[path], format=None, origin=str(path))
    raise WeightsError(f"weights {spec!r}: no such file or directory, not hf://..., and not a card name")


def _resolve_card_hub(card: WeightCard) -> ResolvedWeights:
    hub = card.hub
    assert hub is not None
    folder, paths = download_hub_files(hub.repo, hub.revision, list(hub.files) or None, hub.sha256)
    origin = f"hf://{hub.repo}@{hub.revision}"
    if card.weights_format == VTZOO_FORMAT:
        return _resolve_folder(folder, card, origin=origin, paths=paths)
    weight_files = [p for p in paths if p.suffix in (".safetensors", *_CHECKPOINT_SUFFIXES)]
    return ResolvedWeights(kind="checkpoint", files=weight_files, format=card.weights_format, origin=origin)


def _resolve_folder(folder: Path, card: WeightCard | None, origin: str, paths: list[Path] | None = None) -> ResolvedWeights:
    config_file, weights_file = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if config_file.is_file() and weights_file.is_file():
        config = json.loads(config_file.read_text())
        if isinstance(config, dict) and config.get("vtzoo_format", True) is not False and "vtzoo_family" in config:
            return ResolvedWeights(kind="vtzoo", files=[weights_file], config=config, origin=origin)
    # Not a vtzoo folder: a folder in an original/third-party layout (e.g. transformers CLIP).
    files = paths or sorted(p for p in folder.iterdir() if p.is_file())
    weight_files = [p for p in files if p.suffix in (".safetensors", *_CHECKPOINT_SUFFIXES)]
    if not weight_files:
        raise WeightsError(f"weights {origin}: no {WEIGHTS_NAME} or checkpoint file found in {folder}")
    # prefer safetensors when a repo ships both formats of the same weights
    safes = [p for p in weight_files if p.suffix == ".safetensors"]
    fmt = card.weights_format if card is not None else None
    return ResolvedWeights(kind="checkpoint", files=safes or weight_files, format=fmt, origin=origin)


# -- loading into a model ---------------------------------------------------------------------
def load_state_dict_strict(model: torch.nn.Module, state_dict: StateDict, origin: str = "", strict: bool = True) -> None:
    """``load_state_dict`` whose error lists every missing and unexpected key (and shape clash)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    problems = []
    if mismatched:
        problems.append("shape mismatch:\n  " + "\n  ".join(mismatched))
    if strict and missing:
        problems.append(f"missing keys ({len(missing)}):\n  " + "\n  ".join(missing))
    if strict and unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}):\n  " + "\n  ".join(unexpected))
    if problems:
        raise WeightsError(f"cannot load weights {origin or ''} into {type(model).__name__}:\n" + "\n".join(problems))
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items() if k in own}
    model.load_state_dict(cast, strict=strict)


def config_from_dict(config_class: type, values: Mapping[str, Any], origin: str) -> Any:
    """Build a config dataclass, naming unknown fields instead of a bare TypeError."""
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names - {"vtzoo_family", "vtzoo_format"})
    if unknown:
        raise WeightsError(f"{origin}: unknown config field(s) {unknown} for {config_class.__name__}")
    return config_class(**{k: v for k, v in values.items() if k in names})


def build_model(
    model_class: type["PretrainedModel"],
    card: WeightCard | None,
    weights: Any,
    overrides: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> tuple["PretrainedModel", ResolvedWeights]:
    """Resolve ``weights``, build ``model_class(config)`` and load the (converted) state dict.

    The config is the card's, updated by a vtzoo folder's saved config, then by ``overrides``.
    ``model_class.converters`` maps a checkpoint format name (as cards write it in
    ``weights.format``) to ``(state_dict, config) -> vtzoo state dict``. A checkpoint of unknown
    format is tried as vtzoo keys first, then with each converter; the error lists what did not fit.
    """
    family, converters = model_class.family, model_class.converters
    resolved = resolve_weights(weights, card)
    values: dict[str, Any] = dict(card.config if card else {})
    if resolved.kind == "vtzoo":
        saved = dict(resolved.config or {})
        if saved.get("vtzoo_family", family) != family:
            raise WeightsError(
                f"weights {resolved.origin} are a {saved['vtzoo_family']!r} model, but {family!r} was expected"
            )
        values.update(saved)
    values.update(overrides or {})
    config = config_from_dict(model_class.config_class, values, card.path if card else family)
    model = model_class(config)
    if card is not None and resolved.kind != "random":
        card.warn_if_non_commercial()
    if resolved.kind == "random":
        return model, resolved
    state_dict = resolved.state_dict()
    if resolved.kind == "vtzoo" or resolved.format == VTZOO_FORMAT:
        load_state_dict_strict(model, state_dict, resolved.origin, strict)
        return model, resolved
    if resolved.format is not None:
        if resolved.format not in converters:
            raise WeightsError(
                f"weights {resolved.origin}: format {resolved.format!r} is not one {family} can convert "
                f"(known: {', '.join(sorted(converters))})"
            )
        load_state_dict_strict(model, converters[resolved.format](state_dict, config), resolved.origin, strict)
        return model, resolved
    return model, _load_detected(family, model, config, state_dict, converters, resolved, strict)


def _load_detected(family, model, config, state_dict, converters, resolved, strict) -> ResolvedWeights:
    own = set(model.state_dict())
    if set(state_dict) == own:
        load_state_dict_strict(model, state_dict, resolved.origin, strict)
        resolved.format = VTZOO_FORMAT
        return resolved
    failures = []
    for name, convert in converters.items():
        try:
            converted = convert(state_dict, config)
            load_state_dict_strict(model, converted, resolved.origin, strict)
        except (WeightsError, KeyError, ValueError, RuntimeError) as exc:
            failures.append(f"as {name!r}: {exc}")
            continue
        resolved.format = name
        return resolved
    sample = ", ".join(sorted(state_dict)[:5])
    raise WeightsError(
        f"weights {resolved.origin} do not look like a {family} checkpoint (first keys: {sample}).\n"
        + "\n".join(failures)
    )


class PretrainedModel(torch.nn.Module):
    """Base class of every vtzoo network: a config dataclass, converters, Hub round-trips.

    Subclasses set ``family`` (the registry family name), ``config_class`` (a dataclass) and
    ``converters`` (checkpoint format -> ``(state_dict, config) -> vtzoo state dict``), and take
    the config as their only constructor argument.
    """

    family: str = ""
    config_class: type = object
    converters: dict[str, Converter] = {}

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (vtzoo format) to ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"vtzoo_family": self.family, **dataclasses.asdict(self.config)}
        (directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True))
        # clone: safetensors refuses tensors that share storage (tied weights)
        tensors = {k: v.detach().cpu().clone().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "vtzoo_family": self.family})
        return directory

    @classmethod
    def from_pretrained(cls, weights: Any, strict: bool = True, **overrides: Any) -> "PretrainedModel":
        """Load from ``hf://org/repo[@rev]``, a saved folder, or an original checkpoint file."""
        model, _ = build_model(cls, None, weights, overrides, strict)
        return model.eval()

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        commit_message: str = "Upload vtzoo model",
        private: bool | None = None,
        token: str | None = None,
    ) -> str:
        """Upload ``config.json`` + ``model.safetensors`` to a Hub repo; returns the commit sha."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message
            )
        return info.oid
