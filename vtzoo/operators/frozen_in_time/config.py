"""Hyper-parameters of Frozen in Time (Bain et al., ICCV 2021).

Defaults are the released model: a ViT-B/16 space-time transformer at 224 px over 4 frames,
a DistilBERT-base (uncased) text tower and a 256-d ``minimal`` projection.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECTIONS = ("minimal", "")
TEMPORAL_FIXES = ("zeros", "interp", "bilinear")
TIME_INITS = ("zeros", "rand")


@dataclass
class FrozenInTimeConfig:
    # -- video tower: SpaceTimeTransformer ------------------------------------------------
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None  # None = head_dim ** -0.5
    layer_norm_eps: float = 1e-6
    # Maximum number of frames; a clip may have fewer (the temporal table is sliced).
    num_frames: int = 4
    # Init of the time attention for untrained models ("zeros" starts the model as a plain ViT).
    time_init: str = "zeros"

    # -- text tower: transformers DistilBertModel -----------------------------------------
    text_model: str = "distilbert-base-uncased"
    text_vocab_size: int = 30522
    text_dim: int = 768
    text_layers: int = 6
    text_heads: int = 12
    text_hidden_dim: int = 3072
    text_max_position_embeddings: int = 512
    text_activation: str = "gelu"
    text_pad_token_id: int = 0
    text_attn_implementation: str = "sdpa"

    # -- joint space ------------------------------------------------------------------------
    projection: str = "minimal"  # "minimal" or "" (no projection)
    projection_dim: int = 256

    # -- loading a checkpoint trained with another frame count --------------------------------
    # How to fill the temporal embedding when the checkpoint has FEWER frames than the model
    # (more frames are always truncated): "zeros", "interp" (nearest) or "bilinear".
    load_temporal_fix: str = "zeros"

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(
                f"projection must be one of {PROJECTIONS} (the original's options), got {self.projection!r}"
            )
        if self.load_temporal_fix not in TEMPORAL_FIXES:
            raise ValueError(f"load_temporal_fix must be one of {TEMPORAL_FIXES}, got {self.load_temporal_fix!r}")
        if self.time_init not in TIME_INITS:
            raise ValueError(f"time_init must be one of {TIME_INITS}, got {self.time_init!r}")
        if not self.text_model.startswith("distilbert"):
            # The original reads a 'bert*' model's pooler_output; no released config uses it.
            raise ValueError(
                f"text_model must be a DistilBERT model (the released configs use one), got {self.text_model!r}"
            )
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")

    @property
    def patches_per_frame(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def video_dim(self) -> int:
        return self.embed_dim

    @property
    def output_dim(self) -> int:
        """Dimension of the joint embedding (the towers' own widths when there is no projection)."""
        return self.projection_dim if self.projection == "minimal" else self.embed_dim
