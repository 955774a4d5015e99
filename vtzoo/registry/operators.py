"""Operator registry: a decorator for built-in families, entry points for third-party ones.

Built-in families live in ``vtzoo/operators/<family>/operator.py`` and are imported lazily, the
first time the registry is asked for anything, so ``import vtzoo`` stays cheap. Third-party
packages declare ``[project.entry-points."vtzoo.operators"] name = "pkg.module:OperatorClass"``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

from vtzoo.errors import ConfigError, UnknownOperator, VtzooError, unknown_name_message  # noqa: F401  (re-exported)
from vtzoo.operators.base import Operator

ENTRY_POINT_GROUP = "vtzoo.operators"

_OPERATORS: dict[str, type[Operator]] = {}
_loaded = False
_lock = threading.RLock()

O = TypeVar("O", bound=type[Operator])


def register_operator(name: str) -> Callable[[O], O]:
    """Class decorator: make an :class:`Operator` subclass available as ``vtzoo.create(name)``."""

    def decorator(cls: O) -> O:
        if not (isinstance(cls, type) and issubclass(cls, Operator)):
            raise TypeError(f"@register_operator({name!r}) expects an Operator subclass, got {cls!r}")
        existing = _OPERATORS.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"operator name {name!r} is already registered by {existing.__module__}.{existing.__name__}")
        cls.name = name
        _OPERATORS[name] = cls
        return cls

    return decorator


# Built-in families live in vtzoo/operators/<family>/ (a family may hold further operators in
# sub-packages with an operator.py of their own, e.g. MDMMT's experts).
_FAMILY_PACKAGES = ("vtzoo.operators",)


def _load_builtin() -> None:
    for package_name in _FAMILY_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if module.ispkg:
                _import_operator_module(module.name)


def _import_operator_module(package: str) -> None:
    try:
        found = importlib.util.find_spec(package) is not None and importlib.util.find_spec(f"{package}.operator") is not None
    except ModuleNotFoundError:  # a plain module (e.g. backbones/clip.py), not a family package
        return
    if found:
        importlib.import_module(f"{package}.operator")


def _import_family(name: str) -> None:
    if name.isidentifier():
        for package_name in _FAMILY_PACKAGES:
            _import_operator_module(f"{package_name}.{name}")


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _OPERATORS:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not break the built-in operators
            import warnings

            warnings.warn(f"vtzoo: could not load operator plug-in {ep.name!r} ({ep.value}): {exc}", stacklevel=2)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Operator)):
            import warnings

            warnings.warn(f"vtzoo: entry point {ep.name!r} ({ep.value}) is not an Operator subclass", stacklevel=2)
            continue
        if cls.name != ep.name:
            cls.name = ep.name
        _OPERATORS[ep.name] = cls


def _ensure_loaded() -> None:
    global _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            _load_builtin()
        # Entry points are re-read on every lookup that misses: a plug-in installed (or put on
        # sys.path) after the first lookup is still found.
        _load_entry_points()


def list_operators() -> list[str]:
    """Names of every registered operator, built-in and plug-in."""
    _ensure_loaded()
    return sorted(_OPERATORS)


def get_operator_class(name: str) -> type[Operator]:
    with _lock:
        if name not in _OPERATORS:
            _import_family(name)  # the common case: one built-in family, imported alone
        if name in _OPERATORS:
            return _OPERATORS[name]
    _ensure_loaded()
    try:
        return _OPERATORS[name]
    except KeyError:
        raise UnknownOperator(_unknown_message("operator", name, list(_OPERATORS))) from None


_unknown_message = unknown_name_message


def split_name(name: str, variant: str | None) -> tuple[str, str | None]:
    """Accept ``create("clip4clip/vit-b32")`` as well as ``create("clip4clip", "vit-b32")``."""
    if variant is None and "/" in name:
        name, variant = name.split("/", 1)
    return name, variant


def create(
    name: str,
    variant: str | None = None,
    *,
    weights: Any = None,
    device: str = "cpu",
    precision: str = "auto",
    batch_size: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Operator:
    """Build a ready operator.

    ``name`` is a registry name (``"clip4clip"``) or ``"name/variant"``. ``variant`` selects a
    weight card (default: the operator's ``default_variant``). ``weights`` may be a card name,
    ``hf://org/repo[@revision]``, a local directory (``config.json`` + ``model.safetensors``), an
    original checkpoint file (converted on load), or ``"random"`` for untrained weights (seeded by
    ``seed``); ``None`` loads the card's published weights. ``precision``, ``batch_size``, ``seed``
    and the family's own options (see ``<Operator>.options_class``) say how it runs; every other
    keyword overrides a field of the variant's model config. An unknown keyword fails here.
    """
    from vtzoo.registry.cards import get_card, list_cards

    name, variant = split_name(name, variant)
    cls = get_operator_class(name)
    variant = variant or cls.default_variant
    card = None
    if variant is not None:
        known = [c.split("/", 1)[1] for c in list_cards() if c.startswith(name + "/")]
        if variant not in known:
            raise UnknownOperator(_unknown_message(f"variant of {name!r}", variant, known))
        card = get_card(f"{name}/{variant}")
    torch_device = check_device(device)
    arguments = {"precision": precision, "batch_size": batch_size, "seed": seed, **kwargs}
    options, config = cls.split_arguments(arguments, where=f"{name}/{variant or '-'}")
    return cls.build(card, weights, device=torch_device, options=options, config=config)


def check_device(device: Any):
    """``device`` as a ``torch.device`` that exists here, or a ConfigError saying why not."""
    import torch

    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a device name ({exc})") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: no CUDA GPU is available here (use --device cpu)")
    if torch_device.type == "cuda" and torch_device.index is not None and torch_device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if torch_device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here")
    return torch_device
