"""Hyper-parameters of Frozen in Time (Bain et al., ICCV 2021).

Defaults are the released model: a ViT-B/16 space-time transformer at 224 px over 4 frames,
a DistilBERT-base (uncased) text tower and a 256-d ``minimal`` projection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from vtzoo.errors import ConfigError

PROJECTIONS = ("minimal", "")
TEMPORAL_FIXES = ("zeros", "interp", "bilinear")
TIME_INITS = ("zeros", "rand")
# SpaceTimeTransformer / DistilBertConfig argument -> config field
_VIDEO_ARGS = {name: name for name in ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                                       "mlp_ratio", "qkv_bias", "qk_scale")}  # fmt: skip
_TEXT_ARGS = {"vocab_size": "text_vocab_size", "dim": "text_dim", "n_layers": "text_layers", "n_heads": "text_heads",
              "hidden_dim": "text_hidden_dim", "max_position_embeddings": "text_max_position_embeddings",
              "activation": "text_activation", "pad_token_id": "text_pad_token_id"}  # fmt: skip


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

    @classmethod
    def from_original(cls, original: Mapping[str, Any]) -> "FrozenInTimeConfig":
        """The config of an original ``FrozenInTime`` model.

        ``original`` is the original repository's training config (``{"arch": {"type":
        "FrozenInTime", "args": {...}}}``), the ``FrozenInTime`` arguments alone (``video_params``,
        ``text_params``, ``projection``, ``load_temporal_fix``, ...), or a golden case's
        config.json, which also records the effective ``SpaceTimeTransformer`` arguments and the
        DistilBERT config. Without those, the original's own choices apply: ViT-B/16 at 224 px
        (``arch_config: base_patch16_224``, the only one it builds) and distilbert-base-uncased.
        """
        args = original.get("frozen_in_time_args") or (original.get("arch") or {}).get("args") or original
        if "video_params" not in args or "text_params" not in args:
            raise ConfigError("original Frozen in Time config: no video_params/text_params (expected the "
                              "FrozenInTime arguments, a training config's arch.args, or a golden case)")  # fmt: skip
        video, text = args["video_params"], args["text_params"]
        stt = original.get("space_time_transformer_effective_args") or {}
        bert = original.get("distilbert_config") or {}
        unsupported = [
            (video.get("model", "SpaceTimeTransformer") != "SpaceTimeTransformer", f"video model {video.get('model')!r}"),
            (video.get("arch_config", "base_patch16_224") != "base_patch16_224", f"arch_config {video.get('arch_config')!r}"),
            (stt.get("attention_style", video.get("attention_style", "frozen-in-time")) != "frozen-in-time",
             "an attention_style other than 'frozen-in-time'"),
            (bool(stt.get("representation_size")), "representation_size (a pre-logits layer FrozenInTime does not use)"),
            (bool(bert.get("sinusoidal_pos_embds")), "sinusoidal DistilBERT position embeddings"),
        ]  # fmt: skip
        for refused, what in unsupported:
            if refused:
                raise ConfigError(f"original Frozen in Time config: {what} is not supported")
        values: dict[str, Any] = {ours: stt[theirs] for theirs, ours in _VIDEO_ARGS.items() if theirs in stt}
        values.update({ours: bert[theirs] for theirs, ours in _TEXT_ARGS.items() if theirs in bert})
        eps = re.search(r"eps=([0-9.eE+-]+)", str(stt.get("norm_layer", "")))
        if eps:
            values["layer_norm_eps"] = float(eps.group(1))
        # FrozenInTime reads num_frames from video_params (default 4) for both the tower and the
        # temporal fix on load
        values["num_frames"] = video.get("num_frames", stt.get("num_frames", 4))
        values["time_init"] = video.get("time_init", "zeros")
        values["text_model"] = text.get("model", "distilbert-base-uncased")
        values.update({key: args[key] for key in ("projection", "projection_dim", "load_temporal_fix") if key in args})
        return cls(**values)

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
