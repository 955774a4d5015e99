"""Hyper-parameters of DRL (Disentangled Representation Learning for text-video retrieval).

Defaults are the paper's main MSR-VTT setting: CLIP ViT-B/32, weighted token-wise interaction
(``wti``, weight network layout 2), ``seqTransf`` temporal aggregation and channel decorrelation
regularisation (``cdcr=3``) -- the defaults of the original ``main.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERACTIONS = ("wti", "ti", "dp", "xti")
AGG_MODULES = ("seqTransf", "seqLSTM", "None")
WTI_ARCHS = (1, 2, 3)
CDCR_MODES = (0, 1, 2, 3)


@dataclass
class DRLConfig:
    """Every hyper-parameter of a DRL model.

    The CLIP sizes mirror what the original reads from the OpenAI CLIP state dict; heads of
    both CLIP towers are ``width // 64`` unless given. The temporal transformer of ``seqTransf``
    always has ``temporal_layers`` (4 in the original, hard-coded) layers with the text
    tower's width and heads; the ``xti`` cross encoder has ``cross_layers`` layers and
    ``cross_heads`` (8, hard-coded) heads. (The original builds both from one cross config: an
    xti run given ``--cross_num_hidden_layers`` also changes its seqTransf depth; set both
    fields to that value for such a checkpoint.)
    """

    # CLIP towers (ViT-B/32)
    embed_dim: int = 512
    image_resolution: int = 224
    vision_layers: int = 12
    vision_width: int = 768
    vision_patch_size: int = 32
    vision_heads: int | None = None
    context_length: int = 77
    vocab_size: int = 49408
    transformer_width: int = 512
    transformer_heads: int | None = None
    transformer_layers: int = 12

    # DRL heads
    interaction: str = "wti"  # wti | ti | dp | xti
    agg_module: str = "seqTransf"  # seqTransf | seqLSTM | None
    wti_arch: int = 2  # weight network layout of wti: 1 Linear, 2 MLP (1 hidden), 3 MLP (2 hidden)
    temporal_layers: int = 4
    cross_layers: int = 4
    cross_heads: int = 8

    # training objective
    cdcr: int = 3  # 0 off, 1 random tokens, 2 arg-max partners, 3 weighted arg-max partners
    cdcr_alpha1: float = 1.0
    cdcr_alpha2: float = 0.06
    cdcr_lambda: float = 0.001

    # input sizes of the original pipeline
    max_words: int = 32
    max_frames: int = 12

    def __post_init__(self) -> None:
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"DRLConfig.interaction must be one of {INTERACTIONS}, got {self.interaction!r}")
        if self.agg_module in (None, "none"):
            self.agg_module = "None"
        if self.agg_module not in AGG_MODULES:
            raise ValueError(f"DRLConfig.agg_module must be one of {AGG_MODULES}, got {self.agg_module!r}")
        if self.wti_arch not in WTI_ARCHS:
            raise ValueError(f"DRLConfig.wti_arch must be one of {WTI_ARCHS}, got {self.wti_arch!r}")
        if self.cdcr not in CDCR_MODES:
            raise ValueError(f"DRLConfig.cdcr must be one of {CDCR_MODES}, got {self.cdcr!r}")
        if self.embed_dim != self.transformer_width:
            # The weight networks, the temporal module and the cross encoder all take the
            # projected (embed_dim) features but are built with the text width.
            raise ValueError(
                f"DRL needs embed_dim == transformer_width (got {self.embed_dim} and {self.transformer_width})"
            )
        if self.max_words > self.context_length:
            raise ValueError(f"max_words ({self.max_words}) exceeds context_length ({self.context_length})")

    @property
    def text_heads(self) -> int:
        return self.transformer_heads or self.transformer_width // 64

    @property
    def visual_heads(self) -> int:
        return self.vision_heads or self.vision_width // 64
