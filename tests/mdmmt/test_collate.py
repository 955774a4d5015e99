"""The collate step: raw per-expert sequences + timestamps -> the video transformer's inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vtzoo.operators.mdmmt.collate import ExpertSequence, choose_subset, collate_mdmmt, collate_mmt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
MDMMT_CASE = FIXTURES / "mdmmt" / "visible_3experts_missing_audio"
MMT_CASE = FIXTURES / "mmt" / "visible_3experts_b2_missing_vggish"


def _raw(inputs, pattern):
    videos: dict[int, dict] = {}
    for key, value in inputs.items():
        m = re.fullmatch(pattern, key)
        if m:
            timings = inputs[key[: -len("features")] + "timings"]
            videos.setdefault(int(m["video"]), {})[m["expert"]] = ExpertSequence(value, timings)
    return [videos.get(i, {}) for i in range(max(videos) + 1)]


def test_mdmmt_collate_matches_original():
    cfg = json.loads((MDMMT_CASE / "config.json").read_text())
    experts = [{"name": n, **e} for n, e in cfg["BertVID"]["expert_dims"].items()]
    inputs = load_file(str(MDMMT_CASE / "inputs.safetensors"))
    batch = collate_mdmmt(_raw(inputs, r"raw\.(?P<expert>.+)\.v(?P<video>\d+)\.features"), experts)
    for e in experts:
        n = e["name"]
        assert torch.equal(batch.features[n], inputs[f"features.{n}"])
        assert torch.allclose(batch.features_t[n], inputs[f"features_t.{n}"], atol=1e-6, rtol=0)
        assert torch.equal(batch.features_ind[n], inputs[f"features_ind.{n}"])
    assert batch.missing == [[], ["tf_vggish"]]


def test_mmt_collate_matches_original():
    cfg = json.loads((MMT_CASE / "config.json").read_text())
    max_tok = cfg["dataset"]["max_expert_tokens"]
    experts = [{"name": n, "dim": e["dim"], "idx": e["idx"], "max_tok": max_tok} for n, e in cfg["CENet"]["expert_dims"].items()]
    inputs = load_file(str(MMT_CASE / "inputs.safetensors"))
    batch = collate_mmt(_raw(inputs, r"raw\.v(?P<video>\d+)\.(?P<expert>.+)\.features"), experts)
    for e in experts:
        n = e["name"]
        assert torch.equal(batch.features[n], inputs[f"features.{n}"])
        assert torch.allclose(batch.features_t[n], inputs[f"features_t.{n}"], atol=1e-6, rtol=0)
        assert torch.equal(batch.features_ind[n], inputs[f"features_ind.{n}"])
        assert torch.allclose(batch.features_maxpool[n], inputs[f"features_maxpool.{n}"], atol=1e-6, rtol=0)
        assert torch.allclose(batch.features_avgpool[n], inputs[f"features_avgpool.{n}"], atol=1e-6, rtol=0)


EXPERTS = [{"name": "A", "dim": 2, "idx": 1, "max_tok": 2}, {"name": "B", "dim": 3, "idx": 4, "max_tok": 3}]


def test_mdmmt_rebases_truncates_and_pads_by_hand():
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    timings = [[3.0, 4.0], [4.0, 5.0], [5.0, 7.0]]
    batch = collate_mdmmt([{"A": (feats, timings), "B": (np.ones((1, 3)), None)}, {"A": (feats[:1], [[10.0, 11.0]])}], EXPERTS)
    # re-based to the earliest start (3 s), 2 + midpoint; the third segment is cut (max_tok 2)
    assert batch.features_t["A"].tolist() == [[2.5, 3.5], [2.5, 0.0]]
    assert batch.features["A"][0].tolist() == feats[:2].tolist()
    assert batch.features_ind["A"].tolist() == [[1, 1], [1, 0]]
    # no timestamps -> time 1 for every token; padding -> 0; missing expert -> all zeros
    assert batch.features_t["B"].tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert batch.features_ind["B"].tolist() == [[1, 0, 0], [0, 0, 0]]
    assert batch.missing == [[], ["B"]]


def test_mmt_keeps_absolute_times_pads_with_one_and_pools_everything():
    feats = np.array([[1.0, -5.0], [3.0, 0.0], [2.0, 7.0]], dtype=np.float32)
    timings = [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
    batch = collate_mmt([{"A": (feats, timings)}, {"B": (np.zeros((1, 3)), [[0.0, 2.0]])}], EXPERTS)
    pick = np.sort(np.random.RandomState(0).choice(3, size=2, replace=False))
    assert batch.features["A"][0].tolist() == feats[pick].tolist()
    assert batch.features_t["A"][0].tolist() == (2 + np.array([0.5, 1.5, 2.5])[pick]).tolist()
    assert batch.features_maxpool["A"][0].tolist() == [3.0, 7.0]  # over ALL three features
    assert batch.features_avgpool["A"][0].tolist() == pytest.approx([2.0, 2.0 / 3.0])
    assert batch.features_t["A"][1].tolist() == [1.0, 1.0]  # missing expert: time 1
    assert batch.features_t["B"][1].tolist() == [3.0, 1.0, 1.0]  # padding: time 1
    assert choose_subset(5, 5).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("collate", [collate_mdmmt, collate_mmt])
def test_bad_inputs_are_named(collate):
    good = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"expert 'A'.*\(n, 2\)"):
        collate([{"A": (np.zeros((2, 5)), None)}], EXPERTS)
    with pytest.raises(ValueError, match="expert 'A'.*NaN"):
        collate([{"A": (good, [[0.0, 1.0], [float("nan"), 2.0]])}], EXPERTS)
    with pytest.raises(ValueError, match="expert 'A'.*out of order"):
        collate([{"A": (good, [[2.0, 3.0], [0.0, 1.0]])}], EXPERTS)
    with pytest.raises(ValueError, match="expert 'A'.*ends before it starts"):
        collate([{"A": (good, [[0.0, 1.0], [2.0, 1.5]])}], EXPERTS)
    with pytest.raises(ValueError, match="every expert is missing"):
        collate([{"A": (good, None)}, {"B": None}], EXPERTS)
    with pytest.raises(ValueError, match="unknown expert"):
        collate([{"C": (good, None)}], EXPERTS)
