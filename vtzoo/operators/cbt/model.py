"""CBT: a visual transformer over continuous clip features, BERT over text, and a cross-modal
transformer that scores (video, text) pairs.

* visual: clip features -> linear -> positions -> transformer -> linear back to feature space, so a
  masked clip's output ``ê_t`` is compared with the real features ``e_j`` by dot product (NCE);
* text: transformers' ``BertForMaskedLM`` (its masked-word loss is ``L_bert``);
* cross: the two sequences of hidden states, concatenated with a segment embedding, through a
  transformer; an MLP on the first position gives the score s(x, y), and MI(x, y) = exp(s).
"""

from __future__ import annotations

import torch
from torch import nn

from vtzoo.modeling import PretrainedModel
from vtzoo.operators.cbt.config import CbtConfig


def _encoder(width: int, layers: int, heads: int, intermediate: int, dropout: float):
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertEncoder

    config = BertConfig(hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    config._attn_implementation = "sdpa"  # a standalone encoder: say which attention kernel to use
    return BertEncoder(config)


def _extended(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 1/0 -> the additive attention mask BertEncoder takes: (B, 1, 1, L)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class CbtModel(PretrainedModel):
    family = "cbt"
    config_class = CbtConfig

    def __init__(self, config: CbtConfig):
        super().__init__(config)
        from transformers import BertConfig, BertForMaskedLM

        c = config
        self.visual_in = nn.Linear(c.feature_dim, c.hidden_size)
        self.visual_positions = nn.Embedding(c.max_clips + 1, c.hidden_size)  # +1: a clip to anticipate
        self.visual_norm = nn.LayerNorm(c.hidden_size)
        self.mask_embedding = nn.Parameter(torch.zeros(c.hidden_size))
        self.visual = _encoder(c.hidden_size, c.visual_layers, c.visual_heads, c.intermediate_size, c.dropout)
        self.visual_out = nn.Linear(c.hidden_size, c.feature_dim)
        self.text = BertForMaskedLM(BertConfig(
            vocab_size=c.text_vocab_size, hidden_size=c.text_hidden_size, num_hidden_layers=c.text_layers,
            num_attention_heads=c.text_heads, intermediate_size=c.text_intermediate_size,
            max_position_embeddings=max(512, c.max_text_tokens)))
        self.text_to_cross = nn.Linear(c.text_hidden_size, c.hidden_size)
        self.cross_segments = nn.Embedding(2, c.hidden_size)
        self.cross = _encoder(c.hidden_size, c.cross_layers, c.cross_heads, c.intermediate_size, c.dropout)
        self.mi_head = nn.Sequential(nn.Linear(c.hidden_size, c.hidden_size), nn.GELU(), nn.Linear(c.hidden_size, 1))
        if c.labels:
            self.probe = nn.Linear(c.hidden_size, len(c.labels))

    def add_probe(self, labels, seed: int = 0) -> None:
        """A new linear probe over ``labels`` on the pooled clip states (seeded; set in the config,
        so a saved model rebuilds it)."""
        self.config.labels = tuple(labels)
        reference = self.visual_in.weight
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.probe = nn.Linear(self.config.hidden_size, len(labels)).to(reference.device, reference.dtype)

    # -- towers ---------------------------------------------------------------------------------
    def encode_video(self, features: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, feature_dim) clip features -> (B, T, hidden); ``masked`` (B, T) positions see the
        mask embedding instead of their features."""
        hidden = self.visual_in(features)
        if masked is not None:
            hidden = torch.where(masked[..., None].bool(), self.mask_embedding.to(hidden.dtype), hidden)
        positions = torch.arange(features.shape[1], device=features.device)
        hidden = self.visual_norm(hidden + self.visual_positions(positions))
        return self.visual(hidden, attention_mask=_extended(mask, hidden.dtype)).last_hidden_state

    def predict_features(self, hidden: torch.Tensor) -> torch.Tensor:
        """Visual hidden states -> predictions ``ê`` in the clip-feature space."""
        return self.visual_out(hidden)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(hidden (B, L, text_hidden), MLM logits (B, L, vocab))."""
        out = self.text(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[-1], out.logits

    def cross_scores(self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """s(x, y) of aligned rows: video (N, T, hidden), text (N, L, text_hidden) -> (N,)."""
        text = self.text_to_cross(text)
        joint = torch.cat([video + self.cross_segments.weight[0], text + self.cross_segments.weight[1]], dim=1)
        mask = torch.cat([video_mask, text_mask], dim=1)
        hidden = self.cross(joint, attention_mask=_extended(mask, joint.dtype)).last_hidden_state
        return self.mi_head(hidden[:, 0]).squeeze(-1)
