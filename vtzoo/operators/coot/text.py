"""Paragraph text -> COOT token features, as the original's ``precompute_text.py`` builds them.

Preprocessing ``bert_paper``: whitespace collapsed, one trailing dot removed (not "..."), no
capitalisation; ``[CLS]`` before the FIRST sentence only, `` [SEP]`` after EVERY sentence, and an
inner ``". "`` becomes `` [SEP] `` (it stays inside its sentence). Each sentence is tokenised on
its own without extra special tokens; the whole paragraph goes through BERT in ONE pass; the
features are the hidden states of the last two layers concatenated (2 x 768 = 1536 for
bert-base-uncased); each sentence's features are its slice of the paragraph's.

A paragraph longer than BERT's ``max_position_embeddings`` (512) is cut as the original does:
from the last sentence backwards, each cut sentence keeping at least ``min_cut`` (5) tokens (its
first tokens and its final ``[SEP]``); a :class:`CootTruncationWarning` says so.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Mapping, Sequence

import torch

from vtzoo.operators.coot.inputs import CootTextFeatures, CootTruncationWarning
from vtzoo.operators.coot.model import CootInputError
from vtzoo.registry.errors import WeightsError
from vtzoo.precision import autocast

_WHITESPACE = re.compile(r"\s+")


def preprocess_paragraph(sentences: Sequence[str], begin_paragraph: str = "[CLS]", end_sentence: str = "[SEP]") -> list[str]:
    """The original's ``bert_paper`` preprocessing of a list of sentences."""
    if isinstance(sentences, str):
        raise CootInputError("a paragraph is a list of sentences, not one string")
    if len(sentences) == 0:
        raise CootInputError("a paragraph needs at least one sentence (got zero)")
    processed = []
    for number, sentence in enumerate(sentences):
        sentence = _WHITESPACE.sub(" ", str(sentence)).strip()
        if not sentence:
            raise CootInputError(f"sentence {number} of the paragraph is empty")
        if sentence[-1] == "." and len(sentence) > 1 and sentence[-2] != ".":
            sentence = sentence[:-1]
        sentence = sentence.strip().replace(". ", f" {end_sentence}  ")
        words = ([begin_paragraph] if number == 0 else []) + [w for w in sentence.split(" ") if w.strip()]
        processed.append(" ".join(words) + f" {end_sentence}")
    return processed


def cut_paragraph(token_ids: list[list[int]], max_tokens: int, min_cut: int = 5) -> tuple[list[list[int]], bool]:
    """Shorten a tokenised paragraph to ``max_tokens`` as the original does (last sentences first)."""
    lengths = [len(s) for s in token_ids]
    if sum(lengths) <= max_tokens:
        return token_ids, False
    new_lengths = list(lengths)
    for index in reversed(range(len(new_lengths))):
        overshoot = sum(new_lengths) - max_tokens
        if overshoot <= 0:
            break
        new_lengths[index] = max(min_cut, lengths[index] - overshoot)
    cut = [ids if old == new else ids[: new - 1] + [ids[-1]] for ids, old, new in zip(token_ids, lengths, new_lengths)]
    if sum(len(s) for s in cut) > max_tokens:
        raise CootInputError(
            f"the paragraph has {len(token_ids)} sentences: even cut to {min_cut} tokens each they exceed the text "
            f"model's {max_tokens} positions"
        )
    return cut, True


class BertParagraphEncoder:
    """BERT (``transformers.BertModel``) + its WordPiece tokenizer -> :class:`CootTextFeatures`.

    ``layers``: which hidden states to concatenate (the original: ``(-2, -1)``).
    """

    def __init__(self, bert: Any, tokenizer: Any, layers: Sequence[int] = (-2, -1), min_cut: int = 5):
        self.bert = bert.eval()
        self.tokenizer = tokenizer
        self.layers = tuple(int(layer) for layer in layers)
        self.min_cut = min_cut
        self.max_tokens = int(bert.config.max_position_embeddings)
        self.precision = "fp32"

    def apply_precision(self, precision: str) -> None:
        """bf16 weights in BERT's Linear layers (norms and embeddings float32); features float32."""
        from vtzoo.precision import DTYPES, cast_matmul_weights

        self.precision = precision
        if precision != "fp32":
            cast_matmul_weights(self.bert, DTYPES[precision])

    @property
    def feature_dim(self) -> int:
        return len(self.layers) * int(self.bert.config.hidden_size)

    def tokenize(self, sentences: Sequence[str]) -> tuple[list[list[int]], bool]:
        processed = preprocess_paragraph(sentences)
        ids = [self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(s)) for s in processed]
        return cut_paragraph(ids, self.max_tokens, self.min_cut)

    def __call__(self, sentences: Sequence[str]) -> CootTextFeatures:
        ids, truncated = self.tokenize(sentences)
        if truncated:
            warnings.warn(
                f"COOT: a paragraph of {len(ids)} sentences is longer than the text model's {self.max_tokens} "
                "positions; its last sentences were cut as the original does",
                CootTruncationWarning,
                stacklevel=3,
            )
        device = next(self.bert.parameters()).device
        flat = torch.tensor([[token for sentence in ids for token in sentence]], device=device)
        with torch.inference_mode(), autocast(self.precision, device):
            out = self.bert(input_ids=flat, attention_mask=torch.ones_like(flat), output_hidden_states=True)
        features = torch.cat([out.hidden_states[layer][0] for layer in self.layers], dim=-1).float().cpu()
        return CootTextFeatures(features, [len(s) for s in ids], sentences=list(sentences), truncated=truncated)


# -- the BERT text tower ------------------------------------------------------------------------
def untrained_bert(sizes: Mapping[str, Any] | None, seed: int) -> Any:
    """A BERT of ``sizes`` (``BertConfig`` fields; default bert-base-uncased's sizes), initialised
    from ``seed`` in a forked RNG (the same weights in any process)."""
    from transformers import BertConfig, BertModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BertModel(BertConfig(**dict(sizes or {})), add_pooling_layer=False).eval()


def local_bert(folder: str | os.PathLike) -> Any:
    """A transformers BERT folder (``config.json`` + weights), read locally."""
    from transformers import BertModel

    try:
        return BertModel.from_pretrained(str(folder), add_pooling_layer=False, local_files_only=True).eval()
    except (OSError, ValueError) as exc:
        raise WeightsError(f"coot: text_model folder {folder} could not be read: {exc}") from None


def hub_bert(repo: str, revision: str | None) -> Any:
    """A BERT from the Hub, through vtzoo's Hub client (cache, offline errors, no retries)."""
    from vtzoo.registry.hub import download_hub_files

    folder, _ = download_hub_files(repo, revision, allow_patterns=["config.json", "*.safetensors"])
    return local_bert(folder)
