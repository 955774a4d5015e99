"""Paragraph text -> BERT token features, as the original's precompute_text.py builds them."""

from __future__ import annotations

import pytest
import torch

from vtzoo.operators.coot import CootInputError
from vtzoo.operators.coot.inputs import CootTruncationWarning
from vtzoo.operators.coot.text import BertParagraphEncoder, cut_paragraph, preprocess_paragraph


def test_bert_paper_preprocessing():
    got = preprocess_paragraph(["  Cut the  onions. ", "Fry them. Add salt.", "wait..."])
    assert got == ["[CLS] Cut the onions [SEP]", "Fry them [SEP] Add salt [SEP]", "wait... [SEP]"]


@pytest.mark.parametrize("paragraph", [[], ["ok", "   "]])
def test_empty_paragraph_or_sentence_is_refused(paragraph):
    with pytest.raises(CootInputError):
        preprocess_paragraph(paragraph)


def test_cut_from_the_last_sentence_keeping_its_sep():
    ids = [list(range(6)), list(range(10, 18)), list(range(20, 29))]  # 6 + 8 + 9 = 23 tokens
    cut, truncated = cut_paragraph(ids, max_tokens=20)
    assert truncated
    # overshoot 3 is taken from the last sentence: 9 -> 6 tokens = its first 5 and its last one
    assert cut == [ids[0], ids[1], [20, 21, 22, 23, 24, 28]]
    assert cut_paragraph(ids, max_tokens=23) == (ids, False)


def test_too_many_sentences_to_cut_is_an_error():
    with pytest.raises(CootInputError, match="exceed"):
        cut_paragraph([list(range(6))] * 5, max_tokens=20)


def test_features_are_the_last_two_layers_of_one_pass(tiny_bert, vocab_file):
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab=vocab_file, do_lower_case=True)
    encoder = BertParagraphEncoder(tiny_bert, tokenizer)
    out = encoder(["Cut the onions.", "Fry them"])
    tokens = ["[CLS]", "cut", "the", "onions", "[SEP]", "fry", "them", "[SEP]"]
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokens)])
    with torch.no_grad():
        hidden = tiny_bert(input_ids=ids, output_hidden_states=True).hidden_states
    expected = torch.cat([hidden[-2][0], hidden[-1][0]], dim=-1)
    assert out.sentence_lengths == [5, 3]
    assert out.features.shape == (8, 40)
    assert torch.allclose(out.features, expected, atol=1e-6)
    assert torch.equal(out.sentence_features()[1], out.features[5:])


def test_long_paragraph_is_cut_with_a_warning(tiny_bert, vocab_file):
    from transformers import BertTokenizerFast

    encoder = BertParagraphEncoder(tiny_bert, BertTokenizerFast(vocab=vocab_file, do_lower_case=True))
    sentences = ["the cook cuts the red onion very fast"] * 6  # 6 x 9-10 tokens > 40 positions
    with pytest.warns(CootTruncationWarning, match="cut"):
        out = encoder(sentences)
    assert out.truncated and out.features.shape[0] <= 40
    assert out.sentence_lengths[0] == 10  # [CLS] + 8 words + [SEP], untouched
