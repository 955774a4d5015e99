"""Reference adapter: the MoViNet-pytorch port (a checkout at PATH) on the same weights and input,
for ``benchmarks/bench.py --op movinet --reference PATH``. The adapter itself lives with the family."""

from vtzoo.operators.movinet.benchmark import build, max_abs_diff  # noqa: F401
