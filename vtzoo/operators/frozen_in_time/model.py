"""Frozen in Time: a space-time video transformer and a DistilBERT text tower in one joint space.

The video tower follows the original's "divided space-time" attention: in every block, each
patch first attends over time (to the same position in every frame), then over space (to every
patch of its own frame), and in both cases also to the clip's single CLS token; the CLS query
attends to every token of the clip. Module names mirror the original's state-dict keys, so an
original checkpoint loads with no renaming (see ``convert.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp, PatchEmbed, trunc_normal_
from torch import nn
from transformers import DistilBertConfig, DistilBertModel

from vtzoo.errors import InputError
from vtzoo.modeling import PretrainedModel
from vtzoo.operators.frozen_in_time.config import FrozenInTimeConfig
from vtzoo.precision import DTYPES, cast_matmul_weights, full_precision


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v over the last two dims; ``q`` already carries the 1/sqrt(d) scale."""
    batch_shape = q.shape[:-2]
    out = F.scaled_dot_product_attention(
        q.reshape(-1, *q.shape[-2:]), k.reshape(-1, *k.shape[-2:]), v.reshape(-1, *v.shape[-2:]), scale=1.0
    )
    return out.reshape(*batch_shape, *out.shape[-2:])


class DividedAttention(nn.Module):
    """Multi-head attention over time or space with a shared CLS token.

    Tokens are ``[CLS] + frame-major patches`` (index ``1 + f * N + p``). The CLS query attends
    to all tokens; patch queries are grouped by frame (``over="space"``) or by spatial position
    (``over="time"``) and attend to the CLS key plus their own group.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, qk_scale: float | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def init_as_identity_residual(self) -> None:
        """The original's time_init='zeros': q, k, v start at 0 and proj at all-ones."""
        with torch.no_grad():
            self.qkv.weight.zero_()
            if self.qkv.bias is not None:
                self.qkv.bias.zero_()
            self.proj.weight.fill_(1.0)
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor, num_frames: int, over: str) -> torch.Tensor:
        b, length, dim = x.shape
        h = self.num_heads
        n = (length - 1) // num_frames  # patches per frame
        q, k, v = self.qkv(x).reshape(b, length, 3, h, dim // h).permute(2, 0, 3, 1, 4)  # (b, h, L, d) each
        q = q * self.scale

        cls_out = _attend(q[:, :, :1], k, v)  # the CLS query sees every token of the clip

        def grouped(t: torch.Tensor) -> torch.Tensor:  # (b, h, F*N, d) -> (b, h, groups, members, d)
            t = t.reshape(b, h, num_frames, n, t.shape[-1])
            return t if over == "space" else t.transpose(2, 3)

        q_p, k_p, v_p = grouped(q[:, :, 1:]), grouped(k[:, :, 1:]), grouped(v[:, :, 1:])
        groups = q_p.shape[2]
        cls_k = k[:, :, :1].unsqueeze(2).expand(-1, -1, groups, -1, -1)
        cls_v = v[:, :, :1].unsqueeze(2).expand(-1, -1, groups, -1, -1)
        out = _attend(q_p, torch.cat([cls_k, k_p], dim=3), torch.cat([cls_v, v_p], dim=3))
        if over == "time":
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.reshape(b, h, num_frames * n, -1)], dim=2)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class SpaceTimeBlock(nn.Module):
    """Time attention, then space attention, then MLP (pre-norm).

    Quirk kept from the original: the space-attention residual adds to the block INPUT ``x``,
    not to ``x + time_out``; the time attention reaches the stream only through the input of
    the space attention.
    """

    def __init__(self, config: FrozenInTimeConfig):
        super().__init__()
        dim, eps = config.embed_dim, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = DividedAttention(dim, config.num_heads, config.qkv_bias, config.qk_scale)
        self.timeattn = DividedAttention(dim, config.num_heads, config.qkv_bias, config.qk_scale)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), act_layer=nn.GELU)
        self.norm3 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        time_out = self.timeattn(self.norm3(x), num_frames, over="time")
        space_out = self.attn(self.norm1(x + time_out), num_frames, over="space")
        x = x + space_out
        return x + self.mlp(self.norm2(x))


class SpaceTimeTransformer(nn.Module):
    """The video tower: (B, F, 3, H, W) clips -> (B, embed_dim) final-norm CLS features."""

    def __init__(self, config: FrozenInTimeConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.num_frames = config.num_frames
        self.patches_per_frame = config.patches_per_frame
        self.patch_embed = PatchEmbed(config.img_size, config.patch_size, config.in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.patches_per_frame, dim))  # spatial only
        self.temporal_embed = nn.Parameter(torch.zeros(1, config.num_frames, dim))
        self.blocks = nn.ModuleList(SpaceTimeBlock(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if config.time_init == "zeros":
            for block in self.blocks:
                block.timeattn.init_as_identity_residual()

    def check_input(self, video: torch.Tensor) -> None:
        c = self.config
        if video.dim() != 5:
            raise InputError(
                f"Frozen in Time expects video as (batch, frames, 3, H, W), got shape {tuple(video.shape)}"
            )
        b, f, ch, h, w = video.shape
        if f > self.num_frames:
            raise InputError(
                f"clip has {f} frames but this model takes at most num_frames={self.num_frames} "
                "(sample fewer frames, or build the model with more frames and load_temporal_fix)"
            )
        if f < 1 or ch != c.in_chans or (h, w) != (c.img_size, c.img_size):
            raise InputError(
                f"expected video frames of shape ({c.in_chans}, {c.img_size}, {c.img_size}) and >= 1 frame, "
                f"got (batch, frames, C, H, W) = {tuple(video.shape)}"
            )

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Patch tokens + CLS with spatial and temporal embeddings: (B, 1 + F*N, D)."""
        self.check_input(video)
        b, f = video.shape[:2]
        patches = self.patch_embed(video.flatten(0, 1)).reshape(b, f * self.patches_per_frame, -1)
        # Spatial table tiled over frames plus temporal table repeated per patch; a clip with
        # fewer frames than the model uses the first f temporal entries.
        spatial = self.pos_embed[:, 1:].repeat(1, f, 1)
        temporal = self.temporal_embed[:, :f].repeat_interleave(self.patches_per_frame, dim=1)
        cls = self.cls_token.expand(b, -1, -1) + self.pos_embed[:, :1]
        return torch.cat([cls, patches + spatial + temporal], dim=1)

    def forward(self, video: torch.Tensor, block_outputs: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = self.embed(video)
        f = video.shape[1]
        for block in self.blocks:
            x = block(x, f)
            if block_outputs is not None:
                block_outputs.append(x)
        return self.norm(x)[:, 0]


def build_text_model(config: FrozenInTimeConfig) -> DistilBertModel:
    text_config = DistilBertConfig(
        vocab_size=config.text_vocab_size,
        dim=config.text_dim,
        n_layers=config.text_layers,
        n_heads=config.text_heads,
        hidden_dim=config.text_hidden_dim,
        max_position_embeddings=config.text_max_position_embeddings,
        activation=config.text_activation,
        pad_token_id=config.text_pad_token_id,
        sinusoidal_pos_embds=False,
        attn_implementation=config.text_attn_implementation,
    )
    return DistilBertModel(text_config)


def sim_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (norms clamped at ``eps``)."""
    a = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a @ b.T


class FrozenInTimeModel(PretrainedModel):
    """Dual encoder: ``video_model`` + ``vid_proj`` and ``text_model`` + ``txt_proj``."""

    family = "frozen_in_time"
    config_class = FrozenInTimeConfig

    def __init__(self, config: FrozenInTimeConfig):
        super().__init__(config)
        self.video_model = SpaceTimeTransformer(config)
        self.text_model = build_text_model(config)
        if config.projection == "minimal":
            # ReLU BEFORE the text Linear (keys txt_proj.1.*), none on the video side.
            self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(config.text_dim, config.projection_dim))
            self.vid_proj = nn.Sequential(nn.Linear(config.embed_dim, config.projection_dim))
        else:
            self.txt_proj = nn.Identity()
            self.vid_proj = nn.Identity()

    # -- video ------------------------------------------------------------------------------
    # -- precision (see docs/operators/frozen_in_time.md) ----------------------------------
    def apply_precision(self, precision: str) -> None:
        """bf16 weights in both towers' Linear / Conv layers; norms, position tables and the
        projections stay float32 (the projections run in float32)."""
        super().apply_precision(precision)
        if precision != "fp32":
            cast_matmul_weights(self.video_model, DTYPES[precision])
            cast_matmul_weights(self.text_model, DTYPES[precision])

    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) normalised clips -> (B, embed_dim) CLS features before projection."""
        with self.mixed_precision():
            return self.video_model(video).float()

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) -> (B, output_dim) un-normalised joint-space embeddings."""
        features = self.video_features(video)
        with full_precision(features.device):
            return self.vid_proj(features)

    # -- text -------------------------------------------------------------------------------
    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """DistilBERT's first-token ([CLS]) hidden state, before projection."""
        with self.mixed_precision():
            return self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0].float()

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids (T, L) -> (T, output_dim) un-normalised joint-space embeddings."""
        features = self.text_features(input_ids, attention_mask)
        with full_precision(features.device):
            return self.txt_proj(features)

    # -- both -------------------------------------------------------------------------------
    def forward(
        self, video: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_text(input_ids, attention_mask), self.encode_video(video)

    @staticmethod
    def similarity(text: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """(n_text, n_video) cosine similarities, as the original's ``sim_matrix`` (no temperature)."""
        return sim_matrix(text, video)
