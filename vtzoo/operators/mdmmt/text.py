"""Caption preparation of the two originals (both feed a BERT with a cased vocabulary).

* MDMMT (``BertTXT.forward``): strip, append '.' unless the caption ends in . ? !, tokenizer
  call with special tokens, truncation to ``max_length`` and padding to the longest caption.
* MMT (``tokenize_caption`` + ``crop_or_pad_to_len``): the same '.' rule and
  ``str.capitalize()``, then a ``do_lower_case=True`` BERT tokenizer over the CASED vocabulary
  (lower-cased, accents stripped), [CLS] + tokens + [SEP] cut to ``max_length`` with the last
  token forced to [SEP], zero padding to ``max_length`` (always, not to the batch maximum).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Sequence

import torch

from vtzoo.operators.base import InputError, as_text_list


def add_dot(caption: str) -> str:
    caption = caption.strip()
    if not caption:
        raise InputError("empty caption: every text needs at least one character")
    return caption if caption[-1] in ".?!" else caption + "."


def _check(texts: Sequence[str] | str) -> list[str]:
    return as_text_list(texts)


def mdmmt_tokenize(tokenizer: Any, texts: Sequence[str] | str, max_length: int, dot: bool = True) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask / token_type_ids (N, L), L = longest caption (<= max_length)."""
    texts = [add_dot(t) if dot else t for t in _check(texts)]
    enc = tokenizer(texts, max_length=max_length, truncation=True, add_special_tokens=True, padding=True, return_tensors="pt")
    ids = enc["input_ids"]
    return {
        "input_ids": ids,
        "attention_mask": enc.get("attention_mask", (ids != 0).long()),
        "token_type_ids": enc.get("token_type_ids", torch.zeros_like(ids)),
    }


def _lower_strip_accents(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def mmt_tokenize(tokenizer: Any, texts: Sequence[str] | str, max_length: int) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (N, max_length), always padded to ``max_length``."""
    texts = _check(texts)
    ids = torch.zeros(len(texts), max_length, dtype=torch.long)
    mask = torch.zeros(len(texts), max_length, dtype=torch.long)
    cls_tok, sep_tok = tokenizer.cls_token, tokenizer.sep_token
    for row, text in enumerate(texts):
        caption = _lower_strip_accents(add_dot(text).capitalize())
        tokens = ([cls_tok] + tokenizer.tokenize(caption) + [sep_tok])[:max_length]
        tokens[-1] = sep_tok
        seq = tokenizer.convert_tokens_to_ids(tokens)
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
