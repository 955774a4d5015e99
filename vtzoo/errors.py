"""The one error hierarchy of vtzoo.

Every error vtzoo raises on purpose derives from :class:`VtzooError`, so a caller (the CLI, a
pipeline's skip policy) can tell a bad input or a bad setting from a programming error: the first
is reported on one line and the rest of the work goes on, the second is a bug and propagates.
This module imports nothing from the rest of vtzoo, so any module may import it.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class VtzooError(Exception):
    """Base class of every error vtzoo raises on purpose."""


class InputError(VtzooError, ValueError):
    """An input an operator cannot take. ``source`` names it (a path, ``<tensor>``, a text index)."""

    def __init__(self, message: str, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)

    def with_source(self, source: str) -> "InputError":
        """The same error, naming ``source`` (used where a batch knows which item failed)."""
        if self.source is not None:
            return self
        error = type(self).__new__(type(self))
        InputError.__init__(error, str(self), source)
        return error


class UsageError(VtzooError, ValueError):
    """A bad argument, file or setting given by the user, found before any work (CLI exit 2)."""


class ConfigError(VtzooError, ValueError):
    """An unknown or invalid operator option, config field or spec parameter."""


class UnsupportedTask(VtzooError, NotImplementedError):
    """Raised when an operator is asked for a task it does not implement."""

    def __init__(self, operator: str, task: str, supported: frozenset[str] | None = None):
        self.operator = operator
        self.task = task
        hint = f" (it supports: {', '.join(sorted(supported))})" if supported else ""
        super().__init__(f"operator {operator!r} does not support the task {task!r}{hint}")


class UnknownOperator(VtzooError, KeyError):
    """An operator or variant name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.5) -> str:
    """`` Did you mean: a, b?`` for the nearest of ``known`` to ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=cutoff)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return f"unknown {kind} {name!r}.{did_you_mean(name, known)} Known: {', '.join(known) or '(none)'}."
