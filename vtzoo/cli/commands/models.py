"""``vtzoo list``, ``cards``, ``card``, ``download`` and ``verify-golden``."""

from __future__ import annotations

import argparse

from vtzoo.cli.common import EXIT_FAILED, EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import list_cards
    from vtzoo.registry.operators import get_operator_class, list_operators

    if args.markdown:
        from vtzoo.registry.table import operator_table

        print(operator_table())
        return EXIT_OK
    for name in list_operators():
        cls = get_operator_class(name)
        variants = [c.split("/", 1)[1] for c in list_cards(name)]
        print(f"{name:16s} tasks: {', '.join(sorted(cls.tasks)) or '-'}")
        if variants:
            print(f"{'':16s} variants: {', '.join(variants)} (default: {cls.default_variant})")
    return EXIT_OK


def cmd_cards(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import get_card, list_cards

    for name in list_cards(args.operator):
        print(get_card(name).summary())
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import get_card

    card = get_card(args.name)
    print(f"# {card.path}")
    print(card.to_yaml(), end="")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from vtzoo.registry.weights import prefetch

    for name in args.names:
        folder = prefetch(name)
        print(f"{name}: cached in {folder}")
    return EXIT_OK


def cmd_verify_golden(args: argparse.Namespace) -> int:
    from vtzoo.registry.golden import verify

    ok = verify(args.cases, emit=lambda line: print(line, flush=True))
    return EXIT_OK if ok else EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered operators, their tasks and variants")
    p.add_argument("--markdown", action="store_true", help="the README's operator table")
    p.set_defaults(func=cmd_list)


    p = sub.add_parser("cards", help="list the weight cards")
    p.add_argument("operator", nargs="?", help="only this operator's cards")
    p.set_defaults(func=cmd_cards)


    p = sub.add_parser("card", help="show one weight card")
    p.add_argument("name", help="operator/variant")
    p.set_defaults(func=cmd_card)


    p = sub.add_parser("download", help="prefetch a card's weights (and tokenizer) for offline use")
    p.add_argument("names", nargs="+", help="operator/variant card names")
    p.set_defaults(func=cmd_download)


    p = sub.add_parser("verify-golden", help="check parity with an original implementation's outputs")
    p.add_argument("cases", nargs="+", help="golden case folders")
    p.set_defaults(func=cmd_verify_golden)
