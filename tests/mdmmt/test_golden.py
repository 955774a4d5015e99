"""Parity with the originals: every stored MDMMT / MMT / VGGish / irCSN-152 golden case."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vtzoo.registry.golden import verify_case

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
MODEL_CASES = sorted(p for fam in ("mdmmt", "mmt") for p in (FIXTURES / fam).iterdir() if (p / "config.json").is_file())
EXPERT_CASES = sorted(p for fam in ("vggish", "ircsn152") for p in (FIXTURES / fam).iterdir() if (p / "config.json").is_file())


def _run(case: Path) -> list[str]:
    lines: list[str] = []
    torch.set_num_threads(2)
    ok = verify_case(case, emit=lines.append)
    assert ok, "\n".join(lines)
    return lines


def test_cases_present():
    names = {(p.parent.name, p.name) for p in MODEL_CASES + EXPERT_CASES}
    assert ("mdmmt", "visible_3experts_missing_audio") in names
    assert ("mmt", "visible_3experts_b2_missing_vggish") in names
    assert len([n for n in names if n[0] == "mdmmt"]) >= 3  # the visible case + other expert sets
    assert ("vggish", "visible_3s16k_44k1stereo") in names and ("ircsn152", "visible_b1_t8_64px") in names


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_model_case(case: Path):
    lines = _run(case)
    # embeddings and similarities are computed, never skipped
    assert not any("SKIPPED" in line for line in lines)
    key = "similarity_t2v" if case.parent.name == "mdmmt" else "conf_indep.keep_missing_false"
    assert any(f" {key} max_abs_err=" in line for line in lines)


@pytest.mark.parametrize("case", EXPERT_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_expert_case_from_weights_recipe(case: Path):
    lines = _run(case)
    assert not any("SKIPPED" in line for line in lines)
