"""One filter language for every index backend: Milvus's boolean expressions.

``path like "clips/%" and duration >= 2.0``, ``content_hash in ["ab", "cd"]``, ``not (start > 10)``:
Milvus backends take the expression as it is; the embedded store translates it here into an
SQLite ``WHERE`` clause with bound parameters (values never become SQL text).
"""

from __future__ import annotations

import re
from typing import Any

from vtzoo.errors import VtzooError


class FilterError(VtzooError, ValueError):
    """A filter expression that cannot be parsed, or that names an unknown field."""


_TOKEN = re.compile(r"""\s*(?:(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
                    r"""|(?P<op>==|!=|<=|>=|<|>|&&|\|\||!|\(|\)|\[|\]|,)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))""")
_COMPARISONS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"filter {text!r}: cannot read it from position {position} ({text[position:position + 12]!r})")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str, columns: dict[str, str]):
        self.text, self.columns = text, columns
        self.tokens, self.at = _tokens(text), 0
        self.params: list[Any] = []

    def fail(self, problem: str) -> FilterError:
        return FilterError(f"filter {self.text!r}: {problem}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, *values: str) -> str | None:
        token = self.peek()
        if token is not None and token[1].lower() in values:
            self.at += 1
            return token[1].lower()
        return None

    def expect(self, value: str) -> None:
        if self.take(value) is None:
            raise self.fail(f"expected {value!r} at token {self.at + 1}")

    def parse(self) -> str:
        sql = self.disjunction()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        return sql

    def disjunction(self) -> str:
        parts = [self.conjunction()]
        while self.take("or", "||"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.take("and", "&&"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        if self.take("not", "!"):
            return f"(NOT {self.negation()})"
        if self.take("("):
            inner = self.disjunction()
            self.expect(")")
            return f"({inner})"
        return self.comparison()

    def comparison(self) -> str:
        token = self.peek()
        if token is None or token[0] != "word":
            raise self.fail(f"expected a field name at token {self.at + 1}")
        self.at += 1
        if token[1] not in self.columns:
            raise self.fail(f"unknown field {token[1]!r} (fields: {', '.join(sorted(self.columns))})")
        column = self.columns[token[1]]
        if self.take("like"):
            return f"{column} LIKE {self.value(str)}"
        negated = bool(self.take("not"))
        if self.take("in"):
            self.expect("[")
            values = [self.value()]
            while self.take(","):
                values.append(self.value())
            self.expect("]")
            return f"{column} {'NOT ' if negated else ''}IN ({', '.join(values)})"
        if negated:
            raise self.fail("'not' after a field must be followed by 'in'")
        op = self.peek()
        if op is None or op[1] not in _COMPARISONS:
            raise self.fail(f"expected a comparison after {token[1]!r}")
        self.at += 1
        return f"{column} {_COMPARISONS[op[1]]} {self.value()}"

    def value(self, required: type | None = None) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("ends where a value was expected")
        self.at += 1
        kind, text = token
        if kind == "string":
            value: Any = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "number":
            value = float(text) if any(c in text for c in ".eE") else int(text)
        elif kind == "word" and text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            raise self.fail(f"expected a value, got {text!r}")
        if required is not None and not isinstance(value, required):
            raise self.fail(f"expected a {required.__name__} after 'like', got {text!r}")
        self.params.append(value)
        return "?"


def to_sql(expression: str, columns: dict[str, str]) -> tuple[str, list[Any]]:
    """``(where_clause, params)`` for a Milvus-style expression; ``columns`` maps field -> SQL column."""
    if not expression.strip():
        return "1", []
    parser = _Parser(expression, columns)
    return parser.parse(), parser.params
