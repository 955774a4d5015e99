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


def test_mask_sequence_masks_each_half_from_its_own_vocabulary():
    from vtzoo.operators.videobert.config import VideoBertConfig
    from vtzoo.operators.videobert.inputs import SpecialTokens, layout
    from vtzoo.operators.videobert.pretraining import mask_sequence

    config = VideoBertConfig(text_vocab_size=50, branching=3, levels=2, hidden_size=8, num_attention_heads=2)
    special = SpecialTokens(cls=1, sep=2, mask=3, pad=0)
    seq = layout(list(range(10, 40)), list(range(9)) * 3, config, special)
    changed_text, changed_video = set(), set()
    for seed in range(30):
        ids, text_labels, video_labels = mask_sequence(seq, config, special, torch.Generator().manual_seed(seed))
        for pos, (new, old, t, v) in enumerate(zip(ids, seq.ids, text_labels, video_labels)):
            assert (t != IGNORE) <= (pos in seq.text_positions) and (v != IGNORE) <= (pos in seq.video_positions)
            assert t in (IGNORE, old) and v in (IGNORE, old)
            if new != old and new != 3:  # a random replacement stays in its half's vocabulary
                (changed_text if pos in seq.text_positions else changed_video).add(new)
        assert any(t != IGNORE for t in text_labels) and any(v != IGNORE for v in video_labels)
    assert changed_text and all(0 <= i < 50 for i in changed_text)
    assert changed_video and all(50 <= i < 59 for i in changed_video)


def test_losses_read_at_masked_positions_equal_the_full_heads():
    import torch.nn.functional as F

    from vtzoo.operators.videobert.config import VideoBertConfig
    from vtzoo.operators.videobert.model import VideoBertModel
    from vtzoo.operators.videobert.pretraining import TEXT, TEXT_VIDEO, VIDEO, pretraining_losses, pretraining_outputs

    torch.manual_seed(0)
    config = VideoBertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             text_vocab_size=40, branching=2, levels=2, feature_dim=4, max_position_embeddings=32,
                             max_text_tokens=8, max_video_tokens=8)
    model = VideoBertModel(config).eval()
    ids = torch.tensor([[1, 11, 12, 2, 0], [1, 44, 41, 42, 2], [1, 13, 44, 43, 2]])  # text / video / text-video
    text_labels = torch.full_like(ids, IGNORE)
    video_labels = torch.full_like(ids, IGNORE)
    text_labels[0, 2], video_labels[1, 2], text_labels[2, 1], video_labels[2, 3] = 12, 41, 13, 43
    batch = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": (ids != 0).long(),
             "text_labels": text_labels, "video_labels": video_labels, "regime": torch.tensor([TEXT, VIDEO, TEXT_VIDEO]),
             "aligned": torch.tensor([True, True, False])}
    losses = pretraining_losses(pretraining_outputs(model, batch))
    full = model(ids, batch["token_type_ids"], batch["attention_mask"])
    text, video = full.token_logits[..., :40], full.token_logits[..., 40:44]
    assert torch.allclose(losses["text_cloze"], F.cross_entropy(text[0, 2:3], torch.tensor([12])))
    assert torch.allclose(losses["video_cloze"], F.cross_entropy(video[1, 2:3], torch.tensor([1])))
    assert torch.allclose(losses["pair_text_cloze"], F.cross_entropy(text[2, 1:2], torch.tensor([13])))
    assert torch.allclose(losses["pair_video_cloze"], F.cross_entropy(video[2, 3:4], torch.tensor([3])))
    assert torch.allclose(losses["alignment"], F.cross_entropy(full.alignment_logits[2:3], torch.tensor([1])))
    parts = ["text_cloze", "video_cloze", "pair_text_cloze", "pair_video_cloze", "alignment"]
    assert torch.allclose(losses["loss"], sum(losses[k] for k in parts))


def test_alignment_weight_scales_only_the_alignment_term():
    from vtzoo.operators.videobert.pretraining import pretraining_losses

    torch.manual_seed(0)
    outputs = {"text_logits": torch.randn(3, 5), "text_targets": torch.tensor([0, 1, 2]),
               "video_logits": torch.randn(2, 4), "video_targets": torch.tensor([3, 0]),
               "pair_text_logits": torch.zeros(0, 5), "pair_text_targets": torch.zeros(0, dtype=torch.long),
               "pair_video_logits": torch.zeros(0, 4), "pair_video_targets": torch.zeros(0, dtype=torch.long),
               "alignment_logits": torch.tensor([[2.0, -1.0], [0.5, 0.5]]), "aligned": torch.tensor([True, False])}
    weighted = pretraining_losses(outputs, alignment_weight=10.0)
    # hand-computed: alignment CE = mean(-log softmax([2, -1])[0], -log softmax([.5, .5])[1])
    alignment = (math.log(1 + math.exp(-3.0)) + math.log(2.0)) / 2
    assert abs(float(weighted["alignment"]) - alignment) < 1e-6
    cloze = float(weighted["text_cloze"] + weighted["video_cloze"])
    assert abs(float(weighted["loss"]) - (cloze + 10.0 * alignment)) < 1e-5
    assert abs(float(pretraining_losses(outputs)["loss"]) - (cloze + alignment)) < 1e-5
