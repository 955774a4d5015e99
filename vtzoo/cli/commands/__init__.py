"""One module per ``vtzoo`` command, each with ``register(subparsers)``."""
