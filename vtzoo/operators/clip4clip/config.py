"""CLIP4Clip hyper-parameters. Defaults: the paper's main model (ViT-B/32, meanP, MSR-VTT)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from vtzoo.backbones.clip import CLIPSizes

SIM_HEADERS = ("meanP", "seqLSTM", "seqTransf", "tightTransf")
LOOSE_HEADERS = ("meanP", "seqLSTM", "seqTransf")
# cross-base/cross_config.json of the original: the only fields of it the model reads
CROSS_BASE = {"hidden_size": 512, "num_attention_heads": 8, "hidden_dropout_prob": 0.1}


@dataclass
class CLIP4ClipConfig:
    """Every CLIP4Clip hyper-parameter.

    ``clip``: the CLIP sizes (OpenAI's names; the original reads them off the CLIP state dict).
    The "cross" sizes come from the original's ``cross-base/cross_config.json``; of that file only
    ``hidden_size``, ``num_attention_heads`` and ``hidden_dropout_prob`` matter (the original
    overwrites ``max_position_embeddings`` with ``context_length`` and ``num_hidden_layers`` with
    ``cross_num_hidden_layers``; the MLP width is always 4x and the activation QuickGELU).
    """

    clip: CLIPSizes = field(default_factory=CLIPSizes)
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

    def __post_init__(self) -> None:
        if isinstance(self.clip, Mapping):
            self.clip = CLIPSizes(**self.clip)
        if self.sim_header not in SIM_HEADERS:
            raise ValueError(f"sim_header must be one of {SIM_HEADERS}, got {self.sim_header!r}")
        if self.linear_patch not in ("2d", "3d"):
            raise ValueError(f"linear_patch must be '2d' or '3d', got {self.linear_patch!r}")
        if self.max_words > self.clip.context_length:
            raise ValueError(f"max_words ({self.max_words}) exceeds CLIP's context_length ({self.clip.context_length})")
        # The original wires these widths together (see the module docstring of model.py).
        widths = (self.clip.embed_dim, self.clip.transformer_width, self.cross_hidden_size)
        if self.sim_header != "meanP" and len(set(widths)) != 1:
            raise ValueError(
                f"sim_header {self.sim_header!r} needs clip.embed_dim == clip.transformer_width == cross_hidden_size "
                f"(got {', '.join(map(str, widths))})"
            )

    @property
    def loose(self) -> bool:
        """True for the parameter-free / sequential heads scored by cosine (the original's loose_type)."""
        return self.sim_header in LOOSE_HEADERS

    @classmethod
    def from_original(cls, original: Mapping[str, Any]) -> "CLIP4ClipConfig":
        """The config of a model the original code builds.

        ``original`` holds the original's task arguments (its argparse namespace: ``sim_header``,
        ``linear_patch``, ``max_words``, ``max_frames``, ``cross_num_hidden_layers``,
        ``loose_type``, ``pretrained_clip_name``), flat or under ``task_config``; optionally the CLIP
        sizes it read off the CLIP state dict under ``clip`` (else those of the
        ``pretrained_clip_name`` release) and its cross config under ``cross_config`` /
        ``cross_config_effective`` (else cross-base). A golden case's ``tiny`` block is such a dict.
        """
        task = original.get("task_config", original)
        cross = {**CROSS_BASE, **(original.get("cross_config_effective") or original.get("cross_config") or {})}
        header, loose = task.get("sim_header", "meanP"), task.get("loose_type", True)
        if not loose and header != "tightTransf":
            raise ValueError("loose_type=False is only defined for sim_header tightTransf in the original")
        if loose and header == "tightTransf":
            raise ValueError("tightTransf needs loose_type=False in the original (it asserts so)")
        sizes = original.get("clip")
        clip = CLIPSizes(**sizes) if sizes else CLIPSizes.of_release(task.get("pretrained_clip_name", "ViT-B/32"))
        return cls(
            clip=clip,
            sim_header=header,
            linear_patch=task.get("linear_patch", "2d"),
            max_words=task.get("max_words", 32),
            max_frames=task.get("max_frames", 12),
            cross_num_hidden_layers=task.get("cross_num_hidden_layers", 4),
            cross_hidden_size=cross["hidden_size"],
            cross_num_attention_heads=cross["num_attention_heads"],
            cross_hidden_dropout_prob=cross["hidden_dropout_prob"],
        )
