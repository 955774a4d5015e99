"""VideoBERT: one BERT over text WordPieces and visual words, with BERT's two pre-training heads.

The network is transformers' ``BertForPreTraining`` over the joint vocabulary (text words, then
the visual words, then ``[>]``): its masked-token head predicts text words (text cloze) and visual
words (video cloze, a softmax over the visual vocabulary only), and its sentence-pair head,
read from ``[CLS]``, is the linguistic-visual alignment classifier (is this text aligned with these
clips). The visual vocabulary (the k-means tree) is part of the model's state, so a trained folder
carries the vocabulary its visual words mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from vtzoo.modeling import PretrainedModel
from vtzoo.operators.videobert.config import VideoBertConfig
from vtzoo.operators.videobert.visual_words import VisualVocabulary

ALIGNED = 0  # the sentence-pair head's class for "text and video belong together" (BERT's IsNext)


@dataclass
class VideoBertOutput:
    token_logits: torch.Tensor  # (B, L, vocab_size)
    alignment_logits: torch.Tensor  # (B, 2): [aligned, not aligned]
    hidden: torch.Tensor  # (B, L, hidden) last layer


class VideoBertModel(PretrainedModel):
    family = "videobert"
    config_class = VideoBertConfig

    def __init__(self, config: VideoBertConfig):
        super().__init__(config)
        from transformers import BertConfig, BertForPreTraining

        bert_config = BertConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
        )
        self.bert = BertForPreTraining(bert_config)
        # the k-means tree: level l holds branching ** (l + 1) centroids
        for level in range(config.levels):
            self.register_buffer(f"vocabulary_level_{level}", torch.randn(config.branching ** (level + 1), config.feature_dim))

    @property
    def vocabulary(self) -> VisualVocabulary:
        levels = [getattr(self, f"vocabulary_level_{i}") for i in range(self.config.levels)]
        return VisualVocabulary(centroids=[c.float().cpu() for c in levels], branching=self.config.branching)

    def set_vocabulary(self, vocabulary: VisualVocabulary) -> None:
        """Install a fitted visual vocabulary (it must have this model's branching, levels, dim)."""
        c = self.config
        if (vocabulary.branching, vocabulary.levels, vocabulary.dim) != (c.branching, c.levels, c.feature_dim):
            from vtzoo.errors import InputError

            raise InputError(
                f"visual vocabulary of {vocabulary.branching}^{vocabulary.levels} words of {vocabulary.dim}-d features "
                f"does not fit this model ({c.branching}^{c.levels} words of {c.feature_dim}-d features)"
            )
        for level, centroids in enumerate(vocabulary.centroids):
            getattr(self, f"vocabulary_level_{level}").copy_(centroids)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor) -> VideoBertOutput:
        hidden, pooled = self.encode(input_ids, token_type_ids, attention_mask)
        return VideoBertOutput(self.token_logits(hidden), self.alignment_logits(pooled), hidden)

    def encode(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
               attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(last hidden states (B, L, hidden), BERT's pooled ``[CLS]`` (B, hidden)) without the heads:
        the heads are applied only where they are read (the token head costs a vocabulary-wide
        product per position)."""
        out = self.bert.bert(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output

    def token_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The masked-token head on hidden states (..., hidden) -> (..., vocab_size)."""
        return self.bert.cls.predictions(hidden)

    def alignment_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """The linguistic-visual alignment head on the pooled ``[CLS]`` -> (B, 2): [aligned, not aligned]."""
        return self.bert.cls.seq_relationship(pooled)

    def visual_word_logits(self, token_logits: torch.Tensor) -> torch.Tensor:
        """The masked-token logits restricted to the visual vocabulary (video cloze's softmax)."""
        start = self.config.visual_offset
        return token_logits[..., start : start + self.config.visual_vocab_size]

    def text_word_logits(self, token_logits: torch.Tensor) -> torch.Tensor:
        return token_logits[..., : self.config.text_vocab_size]

