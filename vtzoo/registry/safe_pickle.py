"""Read tensors from pickled checkpoints without executing anything they contain.

Research checkpoints (``.pth``, ``.pth.tar``) often pickle more than tensors: a training
config object (e.g. a ``ConfigParser`` of the training code), an ``argparse.Namespace``, paths,
numpy scalars. ``torch.load(weights_only=True)`` refuses those. This module retries with
*inert stand-ins* for a short allow-list of such classes: a stand-in records the arguments and
state it is given and never imports, calls or builds the original class. Any other class is
refused with an error naming the file and the class.

Only names on :data:`INERT_GLOBALS`, or of the modules in :data:`INERT_MODULES`, are ever stood
in for; the module of a pickled class is never imported.

numpy arrays of numbers are rebuilt for real (:data:`ARRAY_GLOBALS`: numpy's own array
reconstructor, ``ndarray`` and ``dtype``, which only ever hold raw bytes) and come back as
tensors: some releases pickle their parameters as numpy arrays (torchvggish's
``vggish_pca_params-970ea276.pth``, a dict of two arrays). Arrays of Python objects are dropped.
"""

from __future__ import annotations

import pickle
import re
import threading
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch

from vtzoo.registry.errors import WeightsError

# Qualified names (as the pickle spells them) of objects known to appear in research
# checkpoints next to the tensors. Both the Python 3 and the Python 2 spelling of stdlib
# modules are listed: torch.save's protocol 2 writes some stdlib names in their Python 2 form.
INERT_GLOBALS: tuple[str, ...] = (
    # Training-config objects: the pytorch-template ConfigParser (Frozen in Time and others) and
    # the stdlib one, with what the stdlib one pickles alongside itself.
    "parse_config.ConfigParser",
    "configparser.ConfigParser",
    "configparser.RawConfigParser",
    "configparser.SectionProxy",
    "configparser.ConverterMapping",
    "configparser.BasicInterpolation",
    "configparser.ExtendedInterpolation",
    "configparser.Interpolation",
    "ConfigParser.ConfigParser",
    "ConfigParser.RawConfigParser",
    "ConfigParser.SectionProxy",
    "ConfigParser.ConverterMapping",
    "ConfigParser.BasicInterpolation",
    "ConfigParser.ExtendedInterpolation",
    "ConfigParser.Interpolation",
    "re._compile",
    "functools.partial",
    "builtins.getattr",
    "builtins.dict",
    "__builtin__.getattr",
    "__builtin__.dict",
    # Command-line arguments and paths.
    "argparse.Namespace",
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib._local.Path",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
    # numpy scalars and arrays (metrics such as a best validation score).
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
)

# Whole modules whose classes only ever appear in checkpoints as training configuration: fairseq
# checkpoints (VideoCLIP) pickle their OmegaConf config and fairseq meters, with the typing, enum,
# collections and numpy pieces those objects hold. Their classes get stand-ins too; the modules
# are never imported.
INERT_MODULES: tuple[str, ...] = ("omegaconf", "fairseq", "typing", "enum", "collections", "numpy")


def _array_globals() -> dict[str, Any]:
    """Pickle names (numpy 1 and 2 spell the module differently) -> the real numpy objects."""
    import numpy as np

    try:
        reconstruct = np._core.multiarray._reconstruct
    except AttributeError:  # numpy 1
        reconstruct = np.core.multiarray._reconstruct
    return {
        "numpy.core.multiarray._reconstruct": reconstruct,
        "numpy._core.multiarray._reconstruct": reconstruct,
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
    }


ARRAY_GLOBALS = tuple(sorted(_array_globals()))


def _numeric_dtype_classes() -> list[type]:
    """numpy's dtype classes of booleans and numbers (``numpy.dtypes.Float64DType``, ...)."""
    import numpy as np

    return sorted({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"}, key=lambda cls: cls.__name__)


def is_inert(name: str) -> bool:
    """Whether the pickled global ``name`` may be replaced by an inert stand-in."""
    return name in INERT_GLOBALS or name.split(".", 1)[0] in INERT_MODULES


_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNBUILDABLE = re.compile(r"but got (<class '[^']+'>|[\w.]+)")
_LOCK = threading.Lock()


class InertObject:
    """Stand-in for a pickled object of a known non-tensor class.

    It records what the pickle hands it (constructor arguments, ``__setstate__`` state) and
    does nothing else: no import, no call into the original class. ``qualified_name`` says
    which class it stands for.
    """

    qualified_name: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertObject":
        obj = super().__new__(cls)
        obj.__dict__["pickled_args"] = args
        obj.__dict__["pickled_state"] = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the pickle's arguments are kept by __new__
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["pickled_state"] = state

    def __repr__(self) -> str:
        return f"<inert {self.qualified_name}>"


def _stand_in(name: str) -> type[InertObject]:
    cls_name = "Inert_" + re.sub(r"\W", "_", name)
    return type(cls_name, (InertObject,), {"qualified_name": name, "__module__": __name__})


_STAND_INS: dict[str, type[InertObject]] = {name: _stand_in(name) for name in INERT_GLOBALS}


def _error(message: str) -> Exception:
    return WeightsError(message)


def _pickled_globals(path: Path, exc: BaseException) -> list[str]:
    """Every non-default global the checkpoint names (zip files), else the one the error names."""
    if zipfile.is_zipfile(path):
        try:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:  # an unusual archive: fall back to the error message
            pass
    return _UNSUPPORTED_GLOBAL.findall(str(exc))


def _cause(exc: BaseException) -> str:
    """torch's reason without its advice to retry with weights_only=False (vtzoo never does)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", text, re.DOTALL)
    lines = text.strip().splitlines()
    cause = detail.group(1) if detail else (lines[0] if lines else "")
    return f"{type(exc).__name__}: {' '.join(cause.split()) or 'no detail'}"


def _refusal(path: Path, names: list[str]) -> Exception:
    return _error(
        f"checkpoint {path} contains pickled object(s) of class {', '.join(sorted(set(names)))}, which vtzoo "
        "will not unpickle (unpickling can run code): it reads checkpoints with torch.load(weights_only=True), "
        "tensors only (plus inert stand-ins for known training-config "
        "objects such as a ConfigParser or argparse.Namespace). Convert the file to safetensors with the "
        "code that wrote it if you trust it."
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Unpickle ``path`` with ``torch.load(weights_only=True)``, allowing only inert stand-ins.

    Returns the checkpoint as pickled, with :class:`InertObject` instances where the known
    non-tensor objects were. Raises ``WeightsError`` for a missing/corrupt file or a class that
    is not on :data:`INERT_GLOBALS` (naming the file and the class).
    """
    path = Path(path)
    if not path.is_file():
        raise _error(f"checkpoint {path} does not exist")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = exc
    except Exception as exc:
        raise _error(f"checkpoint {path} could not be read by torch.load: {_cause(exc)}") from None
    names = set(_pickled_globals(path, first))
    # A legacy (non-zip) pickle names one refused class per attempt: learn them one at a time.
    for _ in range(64):
        unknown = sorted(n for n in names if not is_inert(n))
        if unknown or not names:
            raise _refusal(path, unknown) if unknown else _error(
                f"checkpoint {path} could not be read with torch.load(weights_only=True): {_cause(first)}"
            )
        arrays = _array_globals()
        allowed = [(arrays.get(n) or _STAND_INS.get(n) or _stand_in(n), n) for n in sorted(names | set(_STAND_INS))]
        allowed += _numeric_dtype_classes()  # what numpy.dtype(...) builds: checked by torch too
        with _LOCK, torch.serialization.safe_globals(allowed):
            try:
                return torch.load(str(path), map_location=map_location, weights_only=True)
            except pickle.UnpicklingError as exc:
                named = set(_UNSUPPORTED_GLOBAL.findall(str(exc))) - names
                if not named:
                    unbuildable = _UNBUILDABLE.findall(str(exc))
                    if unbuildable:
                        raise _refusal(path, unbuildable) from None
                    raise _error(
                        f"checkpoint {path} could not be read with torch.load(weights_only=True): {_cause(exc)}"
                    ) from None
                names |= named
            except Exception as exc:
                raise _error(f"checkpoint {path} could not be read by torch.load: {_cause(exc)}") from None
    raise _error(f"checkpoint {path} pickles too many distinct classes to stand in for")


def strip_inert(obj: Any) -> Any:
    """Keep tensors and plain containers/scalars (numeric numpy arrays become tensors); drop
    stand-ins (and anything else)."""
    if isinstance(obj, torch.Tensor) or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return obj
    if _numeric_array(obj):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, Mapping):
        return {k: strip_inert(v) for k, v in obj.items() if not _dropped(v)}
    if isinstance(obj, (list, tuple)):
        items = [strip_inert(v) for v in obj if not _dropped(v)]
        return tuple(items) if isinstance(obj, tuple) else items
    return None


def _numeric_array(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray) and value.dtype.kind in "biufc"


def _dropped(value: Any) -> bool:
    return isinstance(value, InertObject) or not (
        isinstance(value, (torch.Tensor, Mapping, list, tuple, str, bytes, int, float, bool, type(None)))
        or _numeric_array(value)
    )


def load_checkpoint_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """The checkpoint with only tensors and plain containers (dicts, lists, numbers, strings).

    A typical trainer checkpoint ``{'state_dict': ..., 'config': <ConfigParser>, 'epoch': 3}``
    comes back as ``{'state_dict': ..., 'epoch': 3}``; a bare state dict comes back unchanged.
    """
    return strip_inert(load_checkpoint(path, map_location))
