"""DRL parity with the original code on every golden case (see each case's README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vtzoo.registry.golden import verify_case

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "drl"
CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "config.json").is_file())




def test_every_variant_has_a_case():
    seen = {(c["interaction"], c["agg_module"], c.get("wti_arch"), c["cdcr"])
            for c in (json.loads((p / "config.json").read_text())["tiny"]["model_config"] for p in CASE_DIRS)}
    assert {i for i, *_ in seen} == {"wti", "ti", "dp", "xti"}
    assert {a for _, a, *_ in seen} == {"seqTransf", "seqLSTM", "None"}
    assert {w for i, _, w, _ in seen if i == "wti"} == {1, 2, 3}
    assert {c for *_, c in seen} == {0, 1, 2, 3}


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case_passes(case: Path):
    lines: list[str] = []
    assert verify_case(case, lines.append), "\n".join(lines)
    assert not any("SKIPPED" in line or "NOT_COMPUTED" in line for line in lines), "\n".join(lines)
    errors = [float(line.split("max_abs_err=")[1]) for line in lines if "max_abs_err=" in line]
    assert errors and max(errors) <= 1e-4


def test_variant_comes_from_config_not_folder_name(tmp_path: Path):
    # a wti case stored under a misleading name still runs as wti
    target = tmp_path / "xti_seqLSTM"
    shutil.copytree(CASES / "wti", target)
    lines: list[str] = []
    assert verify_case(target, lines.append), "\n".join(lines)
    assert any(line.split()[1] == "text_weight" for line in lines if "max_abs_err" in line)
