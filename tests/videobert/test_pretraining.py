"""VideoBERT's masking statistics, cloze and alignment losses against direct formulas, augmentations."""

from __future__ import annotations

import math

import torch

from vtzoo.operators.videobert.pretraining import IGNORE, alignment_loss, cloze_loss, mask_tokens, subsample_words


def test_masking_follows_bert_80_10_10():
    ids = torch.full((200, 100), 7)
    maskable = torch.ones_like(ids)
    maskable[:, :10] = 0
    out = mask_tokens(ids, maskable, mask_id=3, random_low=100, random_high=200, generator=torch.Generator().manual_seed(0))
    chosen = out.labels != IGNORE
    assert not chosen[:, :10].any()  # never outside the maskable positions
    rate = chosen.float().sum() / maskable.sum()
    assert abs(float(rate) - 0.15) < 0.01
    masked_to_mask = (out.input_ids[chosen] == 3).float().mean()
    randomised = ((out.input_ids[chosen] >= 100) & (out.input_ids[chosen] < 200)).float().mean()
    kept = (out.input_ids[chosen] == 7).float().mean()
    assert abs(float(masked_to_mask) - 0.8) < 0.02 and abs(float(randomised) - 0.1) < 0.02 and abs(float(kept) - 0.1) < 0.02
    assert torch.equal(out.labels[chosen], ids[chosen])
    assert torch.equal(out.input_ids[~chosen], ids[~chosen])


def test_every_row_with_a_maskable_position_gets_a_mask():
    ids = torch.arange(6).view(3, 2)
    maskable = torch.tensor([[1, 0], [0, 0], [0, 1]])
    out = mask_tokens(ids, maskable, 99, 0, 6, torch.Generator().manual_seed(5), probability=0.0)
    assert (out.labels != IGNORE).sum(1).tolist() == [1, 0, 1]


def test_cloze_loss_is_cross_entropy_over_its_own_vocabulary():
    logits = torch.tensor([[[2.0, 0.0, 1.0], [0.5, 0.5, 0.0]]])  # (1, 2, 3): one vocabulary of 3 words
    labels = torch.tensor([[IGNORE, 12]])  # joint id 12 = word 2 of a vocabulary starting at 10
    loss = cloze_loss(logits, labels, offset=10)
    expected = -math.log(math.exp(0.0) / (math.exp(0.5) + math.exp(0.5) + math.exp(0.0)))
    assert abs(float(loss) - expected) < 1e-6
    assert float(cloze_loss(logits, torch.full_like(labels, IGNORE), 10)) == 0.0


def test_alignment_loss_reads_class_0_as_aligned():
    logits = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    loss = alignment_loss(logits, torch.tensor([True, False]))
    p_first = math.exp(3) / (math.exp(3) + 1)
    p_second = math.exp(2) / (math.exp(2) + 1)
    assert abs(float(loss) - (-(math.log(p_first) + math.log(p_second)) / 2)) < 1e-6


def test_subsampling_keeps_an_evenly_strided_subsequence():
    words = list(range(40))
    for seed in range(20):
        kept = subsample_words(words, torch.Generator().manual_seed(seed))
        steps = {b - a for a, b in zip(kept, kept[1:])}
        assert len(steps) == 1 and 1 <= steps.pop() <= 5
