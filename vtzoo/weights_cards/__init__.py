"""Packaged weight cards: <operator>/<variant>.yaml."""
