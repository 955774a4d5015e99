"""Building blocks of one COOT network, named like the original's modules (simple key mapping).

Masks here follow the original: bool, **True = padding**. Masked attention logits are filled with
``-MASK_VALUE`` (the largest float16 number, not -inf), as the original does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vtzoo.operators.coot.config import ACTIVATIONS, NORMS, AttentionConfig, MLPConfig, PoolerConfig

MASK_VALUE = 32752.0  # the original's INF: exp(-32752) == 0 in float32 and float16


class CootLayerNorm(nn.Module):
    """``layernorm_coot``: ``gain * (x - mean) / (std + eps) + bias`` with the UNBIASED std (not nn.LayerNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, keepdim=True)
        return self.gain * (x - mean) / (std + self.eps) + self.bias


def make_norm(name: str, dim: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "layernorm_coot":
        return CootLayerNorm(dim)
    if name == "layernorm_pytorch":
        return nn.LayerNorm(dim, eps=1e-6)
    raise ValueError(f"unknown COOT normalization {name!r} (one of {NORMS})")


def make_activation(name: str) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "leakyrelu":
        return nn.LeakyReLU(negative_slope=1e-2)
    raise ValueError(f"unknown COOT activation {name!r} (one of {ACTIVATIONS})")


class MLP(nn.Module):
    """The original's MLP, with the same ``mlp.<index>`` layout of its Sequential.

    Quirk kept for the key layout: with 2+ layers the original always inserts the middle norm and
    activation modules (its "is it none?" test compares a config object with a string, which is
    never equal), as Identity when they are "none".
    """

    def __init__(self, input_dim: int, cfg: MLPConfig):
        super().__init__()
        hidden = cfg.hidden_dim or cfg.output_dim
        layers: list[nn.Module] = []
        if cfg.num_layers < 1:
            raise ValueError("an MLP needs at least one layer")
        if cfg.num_layers == 1:
            layers.append(nn.Linear(input_dim, cfg.output_dim))
            if cfg.dropout_output > 0:
                layers.append(nn.Dropout(cfg.dropout_output))
        else:
            layers.append(nn.Linear(input_dim, hidden))
            if cfg.dropout_middle > 0:
                layers.append(nn.Dropout(cfg.dropout_middle))
            layers.append(make_norm(cfg.norm_middle, hidden))
            for _ in range(1, cfg.num_layers - 1):
                layers.append(make_activation(cfg.activation_middle))
                layers.append(nn.Linear(hidden, hidden))
                if cfg.dropout_middle > 0:
                    layers.append(nn.Dropout(cfg.dropout_middle))
                layers.append(make_norm(cfg.norm_middle, hidden))
            layers.append(make_activation(cfg.activation_middle))
            layers.append(nn.Linear(hidden, cfg.output_dim))
            if cfg.dropout_output > 0:
                layers.append(nn.Dropout(cfg.dropout_output))
        self.mlp = nn.Sequential(*layers)
        if cfg.residual == "none":
            self.residual = None
        elif cfg.residual == "passthrough":
            if input_dim != cfg.output_dim:
                raise ValueError(f"passthrough residual needs input dim {input_dim} == output dim {cfg.output_dim}")
            self.residual = nn.Identity()
        elif cfg.residual == "linear":
            self.residual = nn.Linear(input_dim, cfg.output_dim)
        else:
            raise ValueError(f"unknown MLP residual {cfg.residual!r}")
        self.activation_output = make_activation(cfg.activation_output)
        # the original sizes the output norm by the hidden dim (equal to output_dim in every config)
        self.norm_output = make_norm(cfg.norm_output, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        if self.residual is not None:
            out = out + self.residual(x)
        return self.norm_output(self.activation_output(out))


def sincos_table(max_len: int, dim: int) -> torch.Tensor:
    """The original's table: the exponent uses the full channel index ``2 * c / dim`` for sin AND cos.

    Computed in float32 like the original; checkpoints carry it as ``embedding.pe`` anyway.
    """
    position = torch.arange(0, max_len).unsqueeze(1).float()
    channel = torch.arange(0, dim).float()
    div_term = 10000 ** (2 * channel / dim)
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(position / div_term[0::2])
    pe[:, 1::2] = torch.cos(position / div_term[1::2])
    return pe


class PositionalEncoding(nn.Module):
    """Adds the sin/cos table (no scaling); the table is a persistent buffer (``pe``)."""

    def __init__(self, dim: int, max_len: int = 1000):
        super().__init__()
        self.register_buffer("pe", sincos_table(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(
                f"sequence of {x.shape[1]} steps is longer than the positional table ({self.pe.shape[0]})"
            )
        return x + self.pe[: x.shape[1]]


class LearnableClsToken(nn.Module):
    """A learned vector prepended to every sequence (``add_local_cls_token``; off in the paper configs)."""

    def __init__(self, dim: int):
        super().__init__()
        self.cls_param = nn.Parameter(torch.zeros(dim))
        self.fixed_ones = nn.Parameter(torch.ones(1), requires_grad=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor):
        cls = self.cls_param.expand(x.shape[0], 1, -1)
        no_pad = mask.new_zeros((x.shape[0], 1))
        return torch.cat([cls, x], dim=1), torch.cat([no_pad, mask], dim=1), lengths + 1


class MultiHeadAttention(nn.Module):
    def __init__(self, num_heads: int, dim: int, dropout: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"model dim {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.d_head = num_heads, dim // num_heads
        self.query_projection = nn.Linear(dim, dim)
        self.key_projection = nn.Linear(dim, dim)
        self.value_projection = nn.Linear(dim, dim)
        self.final_projection = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.d_head).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """``key_mask`` (B, Lk), True = padding; padded query rows are computed like real ones."""
        b, lq, d = query.shape
        q = self._heads(self.query_projection(query))
        k = self._heads(self.key_projection(key))
        v = self._heads(self.value_projection(value))
        # the explicit form: dropout on the attention weights, or a row with every key padded
        # (the original's fill makes it uniform; an additive mask would not)
        if (self.training and self.dropout.p > 0) or bool(key_mask.all(dim=1).any()):
            logits = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d_head)
            logits = logits.masked_fill(key_mask[:, None, None, :], -MASK_VALUE)
            context = torch.matmul(self.dropout(torch.softmax(logits, dim=3)), v)
        else:
            # fused kernel; adding -MASK_VALUE gives the same weights as the original's fill
            # (exp(-32752) is 0 in float32) as long as a row keeps one real key
            additive = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill(key_mask, -MASK_VALUE)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive[:, None, None, :])
        return self.final_projection(context.transpose(1, 2).reshape(b, lq, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, ff_dim: int, dropout: float, activation: str):
        super().__init__()
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, ff_dim), nn.Dropout(dropout), make_activation(activation), nn.Linear(ff_dim, dim),
            nn.Dropout(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(x)


class Sublayer(nn.Module):
    """Post-norm residual: ``norm(x + f(x, ...))``."""

    def __init__(self, sublayer: nn.Module, dim: int, norm: str):
        super().__init__()
        self.sublayer = sublayer
        self.layer_normalization = make_norm(norm, dim)

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return self.layer_normalization(x + self.sublayer(x, *args))


class TransformerLayer(nn.Module):
    def __init__(self, cfg: AttentionConfig):
        super().__init__()
        dim, ff = cfg.hidden_dim, cfg.pointwise_ff_dim or cfg.hidden_dim
        self.self_attention_layer = Sublayer(MultiHeadAttention(cfg.num_heads, dim, cfg.dropout), dim, cfg.norm)
        self.pointwise_feedforward_layer = Sublayer(FeedForward(dim, ff, cfg.dropout, cfg.activation), dim, cfg.norm)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.self_attention_layer(query, key_value, key_value, key_mask))
        return self.pointwise_feedforward_layer(x)


class TransformerStack(nn.Module):
    """Self-attention (query = key = value, layers chained) or, with ``key_value``, the context
    cross-attention, where only the query is updated from layer to layer."""

    def __init__(self, cfg: AttentionConfig):
        super().__init__()
        if cfg.num_layers < 1:
            raise ValueError("a transformer stack needs at least one layer")
        self.encoder_layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, key_value: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.encoder_layers:
            x = layer(x, x if key_value is None else key_value, mask)
        return x


class GenPool(nn.Module):
    """Attention-aware feature aggregation (generalized pooling), one softmax per channel.

    Per head h: ``act(x W1[h] + b1[h]) W2[h] + b2[h]`` gives one logit per channel of the head's
    ``d_in / heads`` channels; a softmax over the sequence (padding excluded) weighs those
    channels of ``x``; the weighted sum over the sequence is the pooled vector.
    """

    def __init__(self, d_input: int, cfg: PoolerConfig):
        super().__init__()
        d_attn = cfg.hidden_dim or d_input
        heads = cfg.num_heads
        if d_attn % heads or d_input % heads:
            raise ValueError(f"atn pooler: dims {d_attn}/{d_input} are not divisible by {heads} heads")
        self.num_heads = heads
        d_head, d_head_out = d_attn // heads, d_input // heads
        self.genpool_w1_head = nn.Parameter(torch.zeros(heads, d_input, d_head))
        self.genpool_b1_head = nn.Parameter(torch.zeros(heads, d_head))
        self.genpool_w2_head = nn.Parameter(torch.zeros(heads, d_head, d_head_out))
        self.genpool_b2_head = nn.Parameter(torch.zeros(heads, d_head_out))
        # a constant 1 the original keeps in its state dict (buffer here: not a trainable weight)
        self.register_buffer("genpool_one", torch.ones(1))
        self.activation = make_activation(cfg.activation)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        hidden = torch.matmul(x.unsqueeze(1), self.genpool_w1_head.unsqueeze(0)) + self.genpool_b1_head[None, :, None]
        hidden = self.activation(self.dropout1(hidden))
        logits = torch.matmul(hidden, self.genpool_w2_head.unsqueeze(0)) + self.genpool_b2_head[None, :, None]
        logits = self.dropout2(logits).masked_fill(mask[:, None, :, None], -MASK_VALUE)
        weights = self.dropout3(torch.softmax(logits, dim=2))  # (B, heads, N, d/heads)
        weights = weights.transpose(1, 2).reshape(b, n, d)
        return (x * weights).sum(dim=1)


class AtnPool(nn.Module):
    """The original's ``MultiGenPool`` with its one pooling layer (``pools.0``).

    The original chains ``num_layers > 1`` pools by feeding each pool the previous pool's
    (already pooled, 2-D) output, which cannot run; vtzoo refuses that configuration.
    """

    def __init__(self, d_input: int, cfg: PoolerConfig):
        super().__init__()
        if cfg.num_layers != 1:
            raise ValueError(
                f"atn pooler with num_layers={cfg.num_layers}: the original cannot run more than one "
                "(each pool would receive the previous pool's 2-D output)"
            )
        self.pools = nn.ModuleList([GenPool(d_input, cfg)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.pools[0](x, mask)


class AvgSpecialPool(nn.Module):
    """``avg_special``: the SUM over all positions, padding included, divided by the true length.

    Kept as in the original: padded positions carry non-zero transformer outputs, so the result
    depends on how far a batch is padded (see the operator's ``pad_to`` option).
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1) / lengths.unsqueeze(-1).float()


def make_pooler(d_input: int, cfg: PoolerConfig) -> nn.Module:
    if cfg.name == "atn":
        return AtnPool(d_input, cfg)
    if cfg.name == "avg_special":
        return AvgSpecialPool()
    raise ValueError(f"unknown COOT pooler {cfg.name!r}: the original builds 'atn' and 'avg_special'")
