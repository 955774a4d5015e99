"""vtzoo: a model zoo of video-text operators behind one interface."""

from vtzoo.operators.base import Embeddings, Operator, UnsupportedTask, VtzooError
from vtzoo.registry.operators import create, list_operators, register_operator

__version__ = "0.1.0"

__all__ = [
    "Embeddings",
    "Operator",
    "UnsupportedTask",
    "VtzooError",
    "create",
    "list_operators",
    "register_operator",
    "__version__",
]
