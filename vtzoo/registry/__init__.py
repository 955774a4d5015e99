"""Operator registry, weight cards, weight resolution and golden parity checks."""

from vtzoo.registry.cards import WeightCard, get_card, list_cards, load_card
from vtzoo.registry.operators import create, get_operator_class, list_operators, register_operator

__all__ = [
    "WeightCard",
    "create",
    "get_card",
    "get_operator_class",
    "list_cards",
    "list_operators",
    "load_card",
    "register_operator",
]
