"""COOT (Cooperative Hierarchical Transformer, Ging et al., NeurIPS 2020) in PyTorch.

Four networks of one kind (:class:`CootNetwork`):

* ``net_video_local`` encodes the frame features of each clip into a clip embedding, and the
  frames of the WHOLE video into the video context (same weights);
* ``net_video_global`` encodes the clip embeddings of a video into the video embedding; its
  context cross-attention takes the video context as the single query over the clip tokens, and
  its output is concatenated after the pooled vector;
* ``net_text_local`` / ``net_text_global`` do the same for the token features of each sentence
  (context: the whole paragraph) and the sentence embeddings of a paragraph.

State-dict keys are ``<network>.<the original's key>``, i.e. the original's per-network layout
flattened; :mod:`vtzoo.operators.coot.convert` maps the released checkpoint formats onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from vtzoo.errors import InputError
from vtzoo.operators.coot.config import NETWORK_NAMES, CootConfig, CootNetworkConfig
from vtzoo.operators.coot.layers import (
    MLP,
    LearnableClsToken,
    PositionalEncoding,
    TransformerStack,
    make_norm,
    make_pooler,
)
from vtzoo.modeling import PretrainedModel


class CootInputError(InputError):
    """Inputs COOT cannot encode (wrong feature size, empty clip or paragraph, ...)."""


class CootNetwork(nn.Module):
    """One COOT transformer (the original's ``TransformerLegacy``)."""

    def __init__(self, cfg: CootNetworkConfig, input_dim: int):
        super().__init__()
        self.cfg, self.input_dim = cfg, input_dim
        self.input_dropout = nn.Dropout(cfg.dropout_input) if cfg.dropout_input > 0 else None
        self.norm_input = make_norm(cfg.norm_input, input_dim)
        self.input_fc = MLP(input_dim, cfg.input_fc) if cfg.use_input_fc else None
        dim = cfg.input_fc.output_dim if cfg.use_input_fc else input_dim
        if dim != cfg.selfatn.hidden_dim:
            raise ValueError(f"COOT network: input size {dim} at the transformer must equal its hidden_dim "
                             f"{cfg.selfatn.hidden_dim}")  # fmt: skip
        self.net_cls = LearnableClsToken(dim) if cfg.add_local_cls_token else None
        if cfg.positional_encoding == "sincos":
            self.embedding = PositionalEncoding(dim, cfg.positional_max_len)
        elif cfg.positional_encoding == "none":
            self.embedding = None
        else:
            raise ValueError(f"unknown positional encoding {cfg.positional_encoding!r} (sincos | none)")
        self.tf = TransformerStack(cfg.selfatn)
        self.tf_context = TransformerStack(cfg.crossatn) if cfg.use_context else None
        self.output_fc = MLP(dim, cfg.output_fc) if cfg.use_output_fc else None
        pool_dim = cfg.output_fc.output_dim if cfg.use_output_fc else dim
        self.pooler = make_pooler(pool_dim, cfg.pooler)
        self.linear_out = nn.Linear(cfg.output_dim, cfg.output_dim, bias=False) if cfg.linear_out else None

    @property
    def output_size(self) -> int:
        """Size of the pooled output: pooled tokens (+ the context vector for global nets)."""
        size = self.cfg.output_fc.output_dim if self.cfg.use_output_fc else self.cfg.selfatn.hidden_dim
        return size + (self.cfg.crossatn.hidden_dim if self.cfg.use_context else 0)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` (B, L, D), ``mask`` (B, L) True = padding, ``lengths`` (B,), ``context`` (B, H).

        Returns the pooled output (B, output) and the tokens after self-attention (B, L, H).
        """
        if self.input_dropout is not None:
            features = self.input_dropout(features)
        features = self.norm_input(features)
        if self.input_fc is not None:
            features = self.input_fc(features)
        if self.net_cls is not None:
            # quirk kept: the original drops the incremented lengths, so avg_special divides the
            # sum over CLS + steps by the number of steps alone
            features, mask, _ = self.net_cls(features, mask, lengths)
        if self.embedding is not None:
            features = self.embedding(features)
        tokens = self.tf(features, mask)
        attended = None
        if self.tf_context is not None:
            if context is None:
                raise CootInputError("this COOT network attends to a context vector; none was given")
            attended = self.tf_context(context.unsqueeze(1), mask, key_value=tokens).squeeze(1)
        pooled = self.pooler(tokens, mask, lengths)
        if attended is not None:
            pooled = torch.cat([pooled, attended], dim=-1)
        if self.output_fc is not None:
            # the original applies its output FC after pooling (unused by every released config)
            pooled = self.output_fc(pooled)
        if self.linear_out is not None:
            pooled = self.linear_out(pooled)
        return pooled, tokens


@dataclass
class CootLevelOutput:
    """What one modality's encoder returns (the original's Retrieval{Visual,Text}EmbTuple).

    ``high`` = video / paragraph embeddings (B, D_high); ``low`` = clip / sentence embeddings of
    the whole batch, flattened (total, D_low); ``context`` = the local net on the whole video /
    paragraph (B, D_low); ``low_padded`` (B, max_count, D_low) zero-padded, ``low_mask`` (B,
    max_count) True = padding, ``low_lengths`` (B,). ``*_tokens``: tokens before pooling (debug).
    """

    high: torch.Tensor
    low: torch.Tensor
    context: torch.Tensor
    low_padded: torch.Tensor
    low_mask: torch.Tensor
    low_lengths: torch.Tensor
    context_tokens: torch.Tensor | None = None
    low_tokens: torch.Tensor | None = None
    high_tokens: torch.Tensor | None = None


def scatter_to_padded(flat: torch.Tensor, counts: torch.Tensor, pad_to: int | None = None):
    """(total, D) rows grouped by ``counts`` -> (B, max(counts) or pad_to, D) zeros-padded, mask, lengths."""
    counts = counts.long()
    width = int(counts.max()) if pad_to is None else int(pad_to)
    if width < int(counts.max()):
        raise CootInputError(f"pad_to={pad_to} is smaller than the largest count {int(counts.max())}")
    batch = counts.shape[0]
    padded = flat.new_zeros((batch, width, flat.shape[-1]))
    mask = torch.ones((batch, width), dtype=torch.bool, device=flat.device)
    start = 0
    for row, count in enumerate(counts.tolist()):
        padded[row, :count] = flat[start : start + count]
        mask[row, :count] = False
        start += count
    return padded, mask, counts.to(flat.device)


class CootModel(PretrainedModel):
    """The four COOT networks; ``encode_video`` / ``encode_text`` run the hierarchy."""

    family = "coot"
    config_class = CootConfig

    def __init__(self, config: CootConfig):
        super().__init__(config)
        for name in NETWORK_NAMES:
            setattr(self, name, CootNetwork(config.network(name), config.network_input_dim(name)))
        for level in ("video", "text"):
            local, glob = getattr(self, f"net_{level}_local"), config.network(f"net_{level}_global")
            if local.output_size != config.network_input_dim(f"net_{level}_global"):
                raise ValueError(f"net_{level}_local outputs {local.output_size} values but its output_dim says "
                                 f"{config.network_input_dim(f'net_{level}_global')}")  # fmt: skip
            if glob.use_context and glob.crossatn.hidden_dim != local.output_size:
                raise ValueError(f"net_{level}_global: cross-attention size {glob.crossatn.hidden_dim} must equal the "
                                 f"context size {local.output_size}")  # fmt: skip

    @property
    def clip_dim(self) -> int:
        return self.net_video_local.output_size

    @property
    def video_dim(self) -> int:
        return self.net_video_global.output_size

    @property
    def sentence_dim(self) -> int:
        return self.net_text_local.output_size

    @property
    def paragraph_dim(self) -> int:
        return self.net_text_global.output_size

    def _encode(
        self,
        level: str,
        whole: torch.Tensor,
        whole_mask: torch.Tensor,
        whole_lengths: torch.Tensor,
        parts: torch.Tensor,
        parts_mask: torch.Tensor,
        parts_lengths: torch.Tensor,
        counts: torch.Tensor,
        pad_to: int | None = None,
    ) -> CootLevelOutput:
        local: CootNetwork = getattr(self, f"net_{level}_local")
        glob: CootNetwork = getattr(self, f"net_{level}_global")
        expected = local.input_dim
        for name, tensor in (("whole", whole), ("parts", parts)):
            if tensor.shape[-1] != expected:
                raise CootInputError(f"{level} features must have {expected} values per step, got {tensor.shape[-1]} "
                                     f"({name}: {tuple(tensor.shape)})")  # fmt: skip
        if int(counts.sum()) != parts.shape[0]:
            raise CootInputError(f"{level}: counts sum to {int(counts.sum())} but {parts.shape[0]} parts were given")
        if bool((counts < 1).any()):
            raise CootInputError(f"every {level} item needs at least one {'clip' if level == 'video' else 'sentence'}")
        context, context_tokens = local(whole, whole_mask, whole_lengths)
        low, low_tokens = local(parts, parts_mask, parts_lengths)
        low_padded, low_mask, low_lengths = scatter_to_padded(low, counts, pad_to)
        high, high_tokens = glob(low_padded, low_mask, low_lengths, context if glob.cfg.use_context else None)
        return CootLevelOutput(high, low, context, low_padded, low_mask, low_lengths, context_tokens, low_tokens,
                               high_tokens)  # fmt: skip

    def encode_video(
        self,
        vid_feat: torch.Tensor,
        vid_feat_mask: torch.Tensor,
        vid_feat_len: torch.Tensor,
        clip_feat: torch.Tensor,
        clip_feat_mask: torch.Tensor,
        clip_feat_len: torch.Tensor,
        clip_num: torch.Tensor,
        pad_to: int | None = None,
    ) -> CootLevelOutput:
        """The original batch layout (masks True = padding); ``clip_feat`` flattened over the batch.

        ``pad_to``: pad the clip sequences to this many clips instead of the batch's largest
        count (``avg_special`` pooling sees the padding; see :class:`AvgSpecialPool`).
        """
        return self._encode("video", vid_feat, vid_feat_mask, vid_feat_len, clip_feat, clip_feat_mask,
                            clip_feat_len, clip_num, pad_to)  # fmt: skip

    def encode_text(
        self,
        par_feat: torch.Tensor,
        par_feat_mask: torch.Tensor,
        par_feat_len: torch.Tensor,
        sent_feat: torch.Tensor,
        sent_feat_mask: torch.Tensor,
        sent_feat_len: torch.Tensor,
        sent_num: torch.Tensor,
        pad_to: int | None = None,
    ) -> CootLevelOutput:
        """Same as :meth:`encode_video` for paragraphs (token features) and their sentences."""
        return self._encode("text", par_feat, par_feat_mask, par_feat_len, sent_feat, sent_feat_mask,
                            sent_feat_len, sent_num, pad_to)  # fmt: skip


def pad_sequences(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """List of (L_i, D) -> zero-padded (N, max L, D), mask (True = padding), lengths — the original's collate."""
    if not sequences:
        raise CootInputError("nothing to encode")
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long)
    if bool((lengths == 0).any()):
        raise CootInputError("a sequence (clip or sentence) has zero steps")
    dim = sequences[0].shape[-1]
    padded = torch.zeros((len(sequences), int(lengths.max()), dim), dtype=torch.float32)
    mask = torch.ones((len(sequences), int(lengths.max())), dtype=torch.bool)
    for i, seq in enumerate(sequences):
        padded[i, : seq.shape[0]] = seq.float()
        mask[i, : seq.shape[0]] = False
    return padded, mask, lengths
