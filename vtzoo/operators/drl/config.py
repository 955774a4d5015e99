"""Hyper-parameters of DRL (Disentangled Representation Learning for text-video retrieval).

Defaults are the paper's main MSR-VTT setting: CLIP ViT-B/32, weighted token-wise interaction
(``wti``, weight network layout 2), ``seqTransf`` temporal aggregation and channel decorrelation
regularisation (``cdcr=3``) -- the defaults of the original ``main.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from vtzoo.backbones.clip import OPENAI_RELEASES, CLIPSizes

INTERACTIONS = ("wti", "ti", "dp", "xti")
AGG_MODULES = ("seqTransf", "seqLSTM", "None")
WTI_ARCHS = (1, 2, 3)
CDCR_MODES = (0, 1, 2, 3)
# the original's arguments (its argparse names) that are DRL config fields as they are
_ARGUMENTS = ("interaction", "agg_module", "wti_arch", "cdcr", "cdcr_alpha1", "cdcr_alpha2", "cdcr_lambda",
              "max_words", "max_frames")


@dataclass
class DRLConfig:
    """Every hyper-parameter of a DRL model.

    ``clip``: the CLIP sizes (what the original reads from the OpenAI CLIP state dict). The
    temporal transformer of ``seqTransf`` always has ``temporal_layers`` (4 in the original,
    hard-coded) layers with the text tower's width and heads; the ``xti`` cross encoder has
    ``cross_layers`` layers and ``cross_heads`` (8, hard-coded) heads. (The original builds both
    from one cross config: an xti run given ``--cross_num_hidden_layers`` also changes its
    seqTransf depth; :meth:`from_original` sets both.)
    """

    clip: CLIPSizes = field(default_factory=CLIPSizes)

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
        if isinstance(self.clip, Mapping):
            self.clip = CLIPSizes(**self.clip)
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
        if self.clip.embed_dim != self.clip.transformer_width:
            # The weight networks, the temporal module and the cross encoder all take the
            # projected (embed_dim) features but are built with the text width.
            raise ValueError(
                f"DRL needs clip.embed_dim == clip.transformer_width (got {self.clip.embed_dim} and "
                f"{self.clip.transformer_width})"
            )
        if self.max_words > self.clip.context_length:
            raise ValueError(f"max_words ({self.max_words}) exceeds clip.context_length ({self.clip.context_length})")

    @classmethod
    def from_original(cls, original: Mapping[str, Any]) -> "DRLConfig":
        """The config of a model the original code builds.

        ``original`` holds the original's arguments (its argparse namespace: ``interaction``,
        ``agg_module``, ``wti_arch``, ``cdcr*``, ``max_words``, ``max_frames``, ``base_encoder``,
        ``cross_num_hidden_layers``), flat or under ``model_config``; optionally the CLIP sizes it
        read off the CLIP state dict under ``clip`` (else those of the ``base_encoder`` release).
        A golden case's ``tiny`` block is such a dict. Missing arguments take this config's defaults.
        """
        args = original.get("model_config", original)
        release = str(args.get("base_encoder", "ViT-B/32"))
        if release not in OPENAI_RELEASES:
            raise ValueError(f"unsupported base_encoder {release!r} (known: {', '.join(OPENAI_RELEASES)})")
        sizes = original.get("clip")
        values: dict[str, Any] = {k: args[k] for k in _ARGUMENTS if k in args}
        if args.get("interaction") == "xti" and args.get("cross_num_hidden_layers") is not None:
            # the shared cross config's depth, which the original's seqTransf module reads too
            values["cross_layers"] = values["temporal_layers"] = int(args["cross_num_hidden_layers"])
        return cls(clip=CLIPSizes(**sizes) if sizes else CLIPSizes.of_release(release), **values)
