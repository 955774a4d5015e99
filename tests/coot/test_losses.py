"""The training losses: hand-computed contrastive loss, and a fine-tuning step that lowers the total."""

from __future__ import annotations

import json

import pytest
import torch

from vtzoo.operators.coot import ContrastiveLoss, CootLoss, CycleConsistencyLoss


def test_contrastive_loss_by_hand():
    # scores = visual @ text.T = [[0.5, 0.6], [0.1, 0.4]]
    visual, text = torch.eye(2), torch.tensor([[0.5, 0.1], [0.6, 0.4]])
    # row 0 vs its diagonal: 0.2 + 0.6 - 0.5 = 0.3; column 1 vs its diagonal: 0.2 + 0.6 - 0.4 = 0.4;
    # every other hinge is negative -> (0.3 + 0.4) / (2 * 2)
    assert ContrastiveLoss(0.2)(visual, text).item() == pytest.approx(0.175)


def test_cycle_loss_is_zero_for_identical_well_separated_sequences():
    clips = torch.tensor([[[0.0, 0.0], [30.0, 0.0], [0.0, 30.0]]])
    mask = torch.zeros(1, 3, dtype=torch.bool)
    out = CycleConsistencyLoss(num_samples=-1)(clips, mask, torch.tensor([3]), clips.clone(), mask, torch.tensor([3]))
    assert out.clip_clip.item() == pytest.approx(0.0, abs=1e-6)
    assert out.sent_sent.item() == pytest.approx(0.0, abs=1e-6)


def test_sampled_positions_are_real_ones():
    emb = torch.randn(2, 3, 4)
    mask = torch.tensor([[False, True, True], [False, False, True]])
    lens = torch.tensor([1, 2])
    for seed in range(5):
        torch.manual_seed(seed)
        out = CycleConsistencyLoss(num_samples=1)(emb, mask, lens, emb, mask, lens)
        assert out.sample_idx_clip[0] == 0 and out.sample_idx_clip[1] in (0, 1)


def test_fine_tuning_step_lowers_the_loss(yc2_case):
    from vtzoo.operators.coot.golden import config_from_case
    from vtzoo.operators.coot.model import CootModel

    config = config_from_case(json.loads((yc2_case["path"] / "config.json").read_text()))
    model = CootModel(config)
    model.load_state_dict(yc2_case["state"])
    model.eval()  # no dropout: the comparison is deterministic
    x = yc2_case["inputs"]
    loss_fn = CootLoss.from_config(config, num_samples=-1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def total():
        video = model.encode_video(x["vid_feat"], x["vid_feat_mask"], x["vid_feat_len"], x["clip_feat"],
                                   x["clip_feat_mask"], x["clip_feat_len"], x["clip_num"])  # fmt: skip
        text = model.encode_text(x["par_feat"], x["par_feat_mask"], x["par_feat_len"], x["sent_feat"],
                                 x["sent_feat_mask"], x["sent_feat_len"], x["sent_num"])  # fmt: skip
        return loss_fn(video, text)

    first = total()
    # the trainer's weights: the fixture's contrastive total and 0.001 x (clip cycle + sentence cycle)
    assert first["contrastive"].item() == pytest.approx(yc2_case["outputs"]["loss.contrastive_total"].item(), abs=1e-5)
    cycle = yc2_case["outputs"]["loss.cc_clip_clip_all"] + yc2_case["outputs"]["loss.cc_sent_sent_all"]
    assert first["cycle_consistency"].item() == pytest.approx(0.001 * cycle.item(), abs=1e-7)
    for _ in range(5):
        optimizer.zero_grad()
        loss = total()["total"]
        loss.backward()
        optimizer.step()
    assert total()["total"].item() < first["total"].item()
