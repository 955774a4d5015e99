"""Parity with the reference PyTorch port on every MoViNet golden case (shared and vtzoo-made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtzoo.registry.golden import verify_case

CASES = sorted(p for p in (Path(__file__).parents[1] / "fixtures" / "golden" / "movinet").iterdir() if (p / "config.json").is_file())


def test_every_shared_case_is_present():
    names = {p.name for p in CASES}
    assert {"a0_base", "a0_stream"} <= names
    assert len(CASES) >= 9


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_verify_golden(case: Path):
    lines: list[str] = []
    ok = verify_case(case, emit=lines.append)
    assert ok, "\n".join(lines)
    assert lines[-1].endswith("PASS")
    # logits and pooled features are computed, never skipped
    assert not any("SKIPPED" in line and ("logits" in line or "pooled" in line) for line in lines)
    assert any("logits max_abs_err=" in line for line in lines)
