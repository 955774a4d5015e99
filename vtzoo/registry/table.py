"""The operator table of the README and ``vtzoo list --markdown``, made from the registry."""

from __future__ import annotations

from vtzoo.operators.base import TASK_METHODS
from vtzoo.registry.cards import list_cards
from vtzoo.registry.operators import get_operator_class, list_operators

BEGIN, END = "<!-- operator-table:begin -->", "<!-- operator-table:end -->"
_TASK_WORDS = {"video-embedding": "video", "text-embedding": "text", "video-text-similarity": "similarity",
               "video-classification": "classification"}


def operator_table(builtin_only: bool = True) -> str:
    """A Markdown table: operator, what it is, tasks, variants (default first)."""
    rows = ["| operator | what it is | tasks | variants (default first) |", "|---|---|---|---|"]
    for name in list_operators():
        cls = get_operator_class(name)
        if builtin_only and not cls.__module__.startswith("vtzoo.operators."):
            continue
        summary = cls.summary or ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        tasks = ", ".join(_TASK_WORDS[t] for t in TASK_METHODS if t in cls.tasks)
        variants = [c.split("/", 1)[1] for c in list_cards(name)]
        if cls.default_variant in variants:
            variants.remove(cls.default_variant)
            variants.insert(0, cls.default_variant)
        rows.append(f"| `{name}` | {summary} | {tasks} | {', '.join(variants) or '-'} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    """``readme`` with the text between the table markers replaced by the current table."""
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{operator_table()}\n{END}{tail}"
