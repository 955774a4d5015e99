"""CLIP4Clip hyper-parameters. Defaults: the paper's main model (ViT-B/32, meanP, MSR-VTT)."""

from __future__ import annotations

from dataclasses import dataclass

from vtzoo.backbones.clip import CLIPSizes

SIM_HEADERS = ("meanP", "seqLSTM", "seqTransf", "tightTransf")
LOOSE_HEADERS = ("meanP", "seqLSTM", "seqTransf")


@dataclass
class CLIP4ClipConfig:
    """Every CLIP4Clip hyper-parameter.

    The CLIP sizes use OpenAI's names (the original reads them off the CLIP state dict). The
    "cross" sizes come from the original's ``cross-base/cross_config.json``; of that file only
    ``hidden_size``, ``num_attention_heads`` and ``hidden_dropout_prob`` matter (the original
    overwrites ``max_position_embeddings`` with ``context_length`` and ``num_hidden_layers`` with
    ``cross_num_hidden_layers``; the MLP width is always 4x and the activation QuickGELU).
    """

    # similarity head and patch embedding
    sim_header: str = "meanP"
    linear_patch: str = "2d"
    # task
    max_words: int = 32
    max_frames: int = 12
    cross_num_hidden_layers: int = 4
    # cross config (tightTransf encoder; hidden_size also sizes the seqLSTM / frame positions)
    cross_hidden_size: int = 512
    cross_num_attention_heads: int = 8
    cross_hidden_dropout_prob: float = 0.1
    # CLIP (OpenAI sizes), ViT-B/32
    embed_dim: int = 512
    image_resolution: int = 224
    vision_layers: int = 12
    vision_width: int = 768
    vision_patch_size: int = 32
    vision_heads: int = 12
    context_length: int = 77
    vocab_size: int = 49408
    transformer_width: int = 512
    transformer_heads: int = 8
    transformer_layers: int = 12

    def __post_init__(self) -> None:
        if self.sim_header not in SIM_HEADERS:
            raise ValueError(f"sim_header must be one of {SIM_HEADERS}, got {self.sim_header!r}")
        if self.linear_patch not in ("2d", "3d"):
            raise ValueError(f"linear_patch must be '2d' or '3d', got {self.linear_patch!r}")
        if self.max_words > self.context_length:
            raise ValueError(f"max_words ({self.max_words}) exceeds CLIP's context_length ({self.context_length})")
        # The original wires these widths together (see the module docstring of model.py).
        if self.sim_header != "meanP" and not (self.embed_dim == self.transformer_width == self.cross_hidden_size):
            raise ValueError(
                f"sim_header {self.sim_header!r} needs embed_dim == transformer_width == cross_hidden_size "
                f"(got {self.embed_dim}, {self.transformer_width}, {self.cross_hidden_size})"
            )

    @property
    def loose(self) -> bool:
        """True for the parameter-free / sequential heads scored by cosine (the original's loose_type)."""
        return self.sim_header in LOOSE_HEADERS

    @property
    def clip_sizes(self) -> CLIPSizes:
        return CLIPSizes(
            embed_dim=self.embed_dim,
            image_resolution=self.image_resolution,
            vision_layers=self.vision_layers,
            vision_width=self.vision_width,
            vision_patch_size=self.vision_patch_size,
            vision_heads=self.vision_heads,
            context_length=self.context_length,
            vocab_size=self.vocab_size,
            transformer_width=self.transformer_width,
            transformer_heads=self.transformer_heads,
            transformer_layers=self.transformer_layers,
        )

    @classmethod
    def with_clip_sizes(cls, sizes: CLIPSizes, **fields) -> "CLIP4ClipConfig":
        return cls(**sizes.to_dict(), **fields)
