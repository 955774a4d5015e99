"""Parity with the original Frozen in Time code on every golden case (standard_4f from the shared
fixtures; the others generated from the original code, see each case's README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vtzoo.registry.golden import verify_case

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "frozen_in_time"

CASES = sorted(p.name for p in GOLDEN_DIR.iterdir() if (p / "config.json").is_file())
REQUIRED_CASES = {
    "standard_4f",
    "frames2_of_4",
    "image_1frame_of_4",
    "model_8f",
    "projection_none",
    "load_2f_into_4f_zeros",
    "load_3f_into_8f_interp",
    "load_3f_into_8f_bilinear",
    "load_6f_into_4f_truncate",
}


def test_every_variant_has_a_case():
    assert REQUIRED_CASES <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_case_passes(case):
    lines: list[str] = []
    assert verify_case(GOLDEN_DIR / case, lines.append), "\n".join(lines)
    assert lines[-1].endswith("PASS")
    assert not any("SKIPPED" in line or "NOT_COMPUTED" in line for line in lines), lines


@pytest.mark.parametrize(
    "case, field, wrong",
    [
        ("load_3f_into_8f_interp", "load_temporal_fix", "bilinear"),
        ("load_3f_into_8f_bilinear", "load_temporal_fix", "interp"),
        ("load_2f_into_4f_zeros", "load_temporal_fix", "interp"),
        ("projection_none", "projection", "minimal"),
    ],
)
def test_cases_tell_variants_apart(tmp_path, case, field, wrong):
    """The runner reads the variant from config.json: the wrong one must fail, not pass by luck."""
    copy = tmp_path / case
    shutil.copytree(GOLDEN_DIR / case, copy)
    config = json.loads((copy / "config.json").read_text())
    config["frozen_in_time_args"][field] = wrong
    (copy / "config.json").write_text(json.dumps(config))
    lines: list[str] = []
    assert not verify_case(copy, lines.append)
