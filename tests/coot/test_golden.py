"""Every COOT golden case (shared + extra) passes through the registry's verify-golden runner."""

from __future__ import annotations

import pytest

from vtzoo.registry.golden import verify_case

from .conftest import GOLDEN

CASES = sorted(p for p in GOLDEN.iterdir() if (p / "config.json").is_file())


def test_all_cases_present():
    assert {p.name for p in CASES} >= {"yc2_tiny", "cmc_loss", "anet_tiny", "options_tiny"}


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case_passes(case):
    lines: list[str] = []
    assert verify_case(case, lines.append), "\n".join(lines)
    assert lines[-1].endswith("PASS")
    # embeddings, similarities and losses are never skipped
    assert not [line for line in lines if "SKIPPED" in line or "NOT_COMPUTED" in line]


def test_runner_reads_config_not_folder_name(tmp_path):
    import shutil

    renamed = tmp_path / "some_other_name"
    shutil.copytree(GOLDEN / "anet_tiny", renamed)
    assert verify_case(renamed, lambda _line: None)


def test_unknown_kind_fails(tmp_path):
    import json
    import shutil

    case = tmp_path / "bad"
    shutil.copytree(GOLDEN / "cmc_loss", case)
    config = json.loads((case / "config.json").read_text())
    config["golden"]["kind"] = "backbone"
    (case / "config.json").write_text(json.dumps(config))
    lines: list[str] = []
    assert not verify_case(case, lines.append)
    assert "unsupported case kind" in "\n".join(lines)
