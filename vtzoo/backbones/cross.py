"""The heads CLIP4Clip and DRL share over per-frame CLIP features, on transformers' CLIP layers.

* :class:`TemporalTransformer` — CLIP4Clip's ``transformerClip`` (seqTransf head) and DRL's
  temporal module: pre-LN residual attention blocks (QuickGELU MLP of width 4x) whose LayerNorms
  are the BERT/TF-style ones of the original's ``until_module`` (eps 1e-12; same math as
  ``nn.LayerNorm`` with that eps), and whose attention mask is *additive -1e6* on padded keys only
  (padded query rows are still computed).
* :class:`CrossEncoder` — CLIP4Clip's ``CrossModel`` (tightTransf head): learned position
  embeddings added to the input (no token-type embedding, no embedding LayerNorm), the same
  blocks, and a pooler ``QuickGELU(dense(ln_pool(h)[:, 0]))``.

The blocks are transformers ``CLIPEncoderLayer`` s; the original keys (``resblocks.N.attn.in_proj_*``,
``ln_1``, ``mlp.c_fc``, ...) are mapped by :func:`convert_original_transformer` /
:func:`convert_original_cross_encoder`.

Around them, what both originals compute the same way: the temporal modules ``seqTransf``
(:func:`seq_transformer`) and ``seqLSTM`` (:func:`seq_lstm`), both residual; the masked video
vector (:func:`pool_frames`); and the initialisation their heads get before fine-tuning from CLIP
(:func:`init_weights_like_original`, :func:`start_from_clip_text`).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import CLIPTextConfig
from transformers.models.clip.modeling_clip import CLIPEncoder, CLIPTextModel

from vtzoo.backbones.clip import convert_openai_resblock

__all__ = [
    "CrossEncoder",
    "TemporalTransformer",
    "QuickGELU",
    "additive_key_mask",
    "convert_original_cross_encoder",
    "convert_original_transformer",
    "init_weights_like_original",
    "l2_normalise",
    "masked_mean",
    "pool_frames",
    "seq_lstm",
    "seq_transformer",
    "start_from_clip_text",
    "MASK_VALUE",
    "TF_LAYER_NORM_EPS",
]

MASK_VALUE = -1_000_000.0  # module_cross masks padded keys with -1e6, not -inf
TF_LAYER_NORM_EPS = 1e-12  # until_module.LayerNorm default


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def additive_key_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 1/0 mask -> (B, 1, L, L) additive mask: 0 on real keys, -1e6 on padded keys."""
    keys = (1.0 - mask.to(dtype)) * MASK_VALUE
    length = mask.shape[1]
    return keys[:, None, None, :].expand(-1, 1, length, -1)


def _encoder_config(width: int, layers: int, heads: int) -> CLIPTextConfig:
    config = CLIPTextConfig(
        hidden_size=width,
        intermediate_size=4 * width,  # the original ignores the json's intermediate_size
        num_hidden_layers=layers,
        num_attention_heads=heads,
        hidden_act="quick_gelu",  # and its hidden_act
        layer_norm_eps=TF_LAYER_NORM_EPS,
        attention_dropout=0.0,
    )
    config._attn_implementation = "sdpa"
    return config


class TemporalTransformer(nn.Module):
    """Residual attention blocks over a (B, L, width) sequence with a key-padding mask.

    ``forward(x, mask)`` returns the blocks' output only (callers add their own residual).
    """

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.num_layers, self.heads = width, layers, heads
        self.encoder = CLIPEncoder(_encoder_config(width, layers, heads))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        return self.encoder(inputs_embeds=x, attention_mask=additive_key_mask(mask, x.dtype)).last_hidden_state


class CrossEncoder(nn.Module):
    """CLIP4Clip's ``CrossModel``: position embeddings + :class:`TemporalTransformer` blocks + pooler.

    ``forward(x, mask)`` -> (hidden (B, L, width), pooled (B, width)).
    """

    def __init__(self, width: int, layers: int, heads: int, max_positions: int, dropout: float = 0.1):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_positions, width)
        self.dropout = nn.Dropout(dropout)  # active in training only, as in the original
        self.transformer = TemporalTransformer(width, layers, heads)
        self.ln_pool = nn.LayerNorm(width, eps=TF_LAYER_NORM_EPS)
        self.dense = nn.Linear(width, width)
        self.activation = QuickGELU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"cross encoder input has {x.shape[1]} positions; it has {self.position_embeddings.num_embeddings}"
            )
        positions = torch.arange(x.shape[1], device=x.device)
        hidden = self.transformer(self.dropout(x + self.position_embeddings(positions)), mask)
        pooled = self.activation(self.dense(self.ln_pool(hidden)[:, 0]))
        return hidden, pooled


# -- temporal modules and pooling --------------------------------------------------------------
def seq_transformer(
    frames: torch.Tensor, mask: torch.Tensor, positions: nn.Embedding, transformer: TemporalTransformer
) -> torch.Tensor:
    """``seqTransf``: frame position embeddings (ids 0..T-1 whatever the mask) + the temporal
    transformer, residual to the frames as they came in. (B, T, D) -> (B, T, D)."""
    if frames.shape[1] > positions.num_embeddings:
        raise ValueError(f"seqTransf has {positions.num_embeddings} frame positions, got {frames.shape[1]} frames")
    ids = torch.arange(frames.shape[1], device=frames.device)
    return transformer(frames + positions(ids), mask) + frames


def seq_lstm(lstm: nn.LSTM, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``seqLSTM``: the LSTM over each video's valid frames only (packed by length), residual.

    After a video's length the output is zeros (from unpacking) up to the longest length in the
    batch and the input frames beyond it, as in the originals; then the frames are added.
    """
    lengths = mask.long().sum(dim=-1)
    if bool((lengths == 0).any()):
        raise ValueError("seqLSTM needs at least one valid frame per video (a video_mask row is all zeros)")
    packed = pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True)
    out = torch.cat([out, frames[:, out.shape[1] :]], dim=1)
    return out + frames


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    # plain division (no epsilon), as the originals: an all-zero vector gives NaN there too
    return x / x.norm(dim=-1, keepdim=True)


def masked_mean(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames, (B, T, D) -> (B, D); a video without one divides by 1."""
    weights = mask.to(torch.float32).unsqueeze(-1)
    count = weights.sum(dim=1)
    count = torch.where(count == 0, torch.ones_like(count), count)
    return (frames * weights).sum(dim=1) / count


def pool_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The video vector both originals score with: L2-normalised frames, masked mean, L2-normalised."""
    return l2_normalise(masked_mean(l2_normalise(frames), mask))


# -- the originals' initialisation before fine-tuning --------------------------------------------
@torch.no_grad()
def init_weights_like_original(module: nn.Module) -> None:
    """The originals' ``init_weights`` over ``module``'s submodules: N(0, 0.02) Linear / Embedding
    weights, zero biases, unit LayerNorms; an LSTM gets PyTorch's default draw. Random draws come
    from torch's global generator (seeded by the caller)."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            sub.weight.normal_(mean=0.0, std=0.02)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            sub.bias.zero_()
        if isinstance(sub, nn.LayerNorm):
            sub.weight.fill_(1.0)
            sub.bias.zero_()
        if isinstance(sub, nn.LSTM):
            sub.reset_parameters()


@torch.no_grad()
def start_from_clip_text(text_model: CLIPTextModel, positions: nn.Embedding | None = None,
                         transformer: TemporalTransformer | None = None) -> None:
    """The originals' "initialization trick": ``positions`` <- CLIP's text position embedding and
    the blocks of ``transformer`` <- the first text blocks (blocks beyond the text tower's depth
    keep their initialisation)."""
    if positions is not None:
        positions.weight.copy_(text_model.embeddings.position_embedding.weight)
    if transformer is not None:
        for block, text_block in zip(transformer.encoder.layers, text_model.encoder.layers):
            block.load_state_dict(text_block.state_dict())


# -- converters ---------------------------------------------------------------------------------
def _block_indices(state_dict: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    marker = f"{prefix}resblocks."
    return sorted({int(k[len(marker) :].split(".")[0]) for k in state_dict if k.startswith(marker)})


def convert_original_transformer(
    state_dict: Mapping[str, torch.Tensor], src: str, dst: str
) -> dict[str, torch.Tensor]:
    """Original ``Transformer`` keys ``{src}resblocks.N.*`` -> :class:`TemporalTransformer` keys
    ``{dst}encoder.layers.N.*``."""
    out: dict[str, torch.Tensor] = {}
    for i in _block_indices(state_dict, src):
        out.update(convert_openai_resblock(state_dict, f"{src}resblocks.{i}.", f"{dst}encoder.layers.{i}."))
    return out


def convert_original_cross_encoder(
    state_dict: Mapping[str, torch.Tensor], src: str = "cross.", dst: str = "cross."
) -> dict[str, torch.Tensor]:
    """Original ``CrossModel`` keys (``{src}embeddings.position_embeddings.weight``,
    ``{src}transformer.resblocks.N.*``, ``{src}pooler.{ln_pool,dense}.*``) -> :class:`CrossEncoder`."""
    out = convert_original_transformer(state_dict, f"{src}transformer.", f"{dst}transformer.")
    out[f"{dst}position_embeddings.weight"] = state_dict[f"{src}embeddings.position_embeddings.weight"]
    for kind in ("weight", "bias"):
        out[f"{dst}ln_pool.{kind}"] = state_dict[f"{src}pooler.ln_pool.{kind}"]
        out[f"{dst}dense.{kind}"] = state_dict[f"{src}pooler.dense.{kind}"]
    return out
