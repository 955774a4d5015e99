"""COOT hyper-parameters.

A COOT model is four transformer networks of the same kind (:class:`CootNetworkConfig`): a
video LOCAL net (frames -> clip), a video GLOBAL net (clips -> video), and the same pair for text
(tokens -> sentence, sentences -> paragraph). The defaults are the paper's YouCook2 / ActivityNet
architecture (``config/retrieval/paper2020/*.yaml`` of the original: 384-d, one layer, 8 heads,
attention-aware pooling for the local nets, ``avg_special`` + context cross-attention for the
global nets); the variants differ only in the input feature dimensions and training settings.

:meth:`CootConfig.from_original` reads the original's experiment config (the yaml's
``net_video_local`` ... blocks, its dataset's feature sizes and its training losses), so any
original configuration can be rebuilt.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from vtzoo.errors import ConfigError

NETWORK_NAMES = ("net_video_local", "net_video_global", "net_text_local", "net_text_global")
POOLERS = ("atn", "avg_special")  # the two the original's make_pooler_module can build
NORMS = ("none", "layernorm_coot", "layernorm_pytorch")
ACTIVATIONS = ("none", "relu", "gelu", "leakyrelu")


@dataclass
class AttentionConfig:
    """A stack of post-norm transformer layers (self-attention, or the context cross-attention)."""

    hidden_dim: int = 384
    num_layers: int = 1
    num_heads: int = 8
    pointwise_ff_dim: int = 384  # 0 = hidden_dim
    activation: str = "gelu"
    dropout: float = 0.05
    norm: str = "layernorm_coot"


@dataclass
class MLPConfig:
    """The original's ``MLP``: Linear layers, dropout, optional norms, output activation."""

    output_dim: int = 384
    num_layers: int = 1
    hidden_dim: int = 0  # 0 = output_dim
    activation_middle: str = "none"
    activation_output: str = "gelu"
    dropout_middle: float = 0.0
    dropout_output: float = 0.0
    norm_middle: str = "none"
    norm_output: str = "none"
    residual: str = "none"  # none | passthrough | linear


@dataclass
class PoolerConfig:
    """``atn`` = attention-aware feature aggregation (GenPool); ``avg_special`` = the appendix's average."""

    name: str = "atn"
    hidden_dim: int = 768
    num_heads: int = 2
    num_layers: int = 1
    dropout: float = 0.05
    activation: str = "gelu"


@dataclass
class CootNetworkConfig:
    """One of the four COOT networks (the original's ``TransformerLegacy``)."""

    output_dim: int = 384
    use_input_fc: bool = True
    input_fc: MLPConfig = field(default_factory=MLPConfig)
    positional_encoding: str = "sincos"  # sincos | none
    positional_max_len: int = 1000
    add_local_cls_token: bool = False
    dropout_input: float = 0.0
    norm_input: str = "layernorm_coot"
    selfatn: AttentionConfig = field(default_factory=AttentionConfig)
    use_context: bool = False
    crossatn: AttentionConfig = field(default_factory=AttentionConfig)
    use_output_fc: bool = False
    output_fc: MLPConfig = field(default_factory=MLPConfig)
    pooler: PoolerConfig = field(default_factory=PoolerConfig)
    linear_out: bool = False


def _local_net() -> CootNetworkConfig:
    return CootNetworkConfig()


def _global_net() -> CootNetworkConfig:
    return CootNetworkConfig(
        output_dim=768,
        use_input_fc=False,
        use_context=True,
        pooler=PoolerConfig(name="avg_special"),
    )


@dataclass
class CootConfig:
    """The whole COOT model. Defaults = ``yc2_100m_coot`` (HowTo100M S3D features, 512-d)."""

    video_feature_dim: int = 512
    text_feature_dim: int = 1536
    net_video_local: CootNetworkConfig = field(default_factory=_local_net)
    net_video_global: CootNetworkConfig = field(default_factory=_global_net)
    net_text_local: CootNetworkConfig = field(default_factory=_local_net)
    net_text_global: CootNetworkConfig = field(default_factory=_global_net)
    # -- inputs (the original's dataset settings) --
    max_frames: int = 80  # per video and per clip; longer ones are subsampled (warned)
    # clips per video / sentences per paragraph; the original has no limit (None), but the global
    # nets' positional table has positional_max_len (1000) rows: more are cut (warned)
    max_clips: int | None = None
    add_stop_frame: int = 2  # clip stop frame = ceil(fps * stop_sec) + add_stop_frame (YouCook2 2, ActivityNet 1)
    expand_segments: int = 0  # clips shorter than this many frames are widened (ActivityNet 10)
    # -- training losses (the yaml's train block) --
    margin: float = 0.2
    weight_high: float = 1.0
    weight_high_internal: float = 1.0
    weight_low: float = 1.0
    weight_low_internal: float = 1.0
    weight_context: float = 1.0
    weight_context_internal: float = 0.0
    loss_cycle_cons: float = 0.001
    # one dropout for every attention, feed-forward and pooling layer of the four networks, as each
    # paper config has (YouCook2 0.05, ActivityNet 0.025, YouCook2 2D+3D 0.01); None keeps theirs
    dropout: float | None = None
    # shortcuts that resize all four networks at once (None keeps the network blocks as they are):
    # transformer width (local outputs = width, global outputs = 2 x width with context), heads, layers
    hidden_dim: int | None = None
    num_heads: int | None = None
    num_layers: int | None = None

    def __post_init__(self) -> None:
        for name in NETWORK_NAMES:
            net = self.network(name)
            if self.dropout is not None:
                net.selfatn.dropout = net.crossatn.dropout = net.pooler.dropout = float(self.dropout)
            for block in (net.selfatn, net.crossatn):
                if self.hidden_dim is not None:
                    block.hidden_dim = block.pointwise_ff_dim = int(self.hidden_dim)
                if self.num_heads is not None:
                    block.num_heads = int(self.num_heads)
                if self.num_layers is not None:
                    block.num_layers = int(self.num_layers)
            if self.hidden_dim is not None:
                width = int(self.hidden_dim)
                net.input_fc.output_dim = width
                if net.pooler.name == "atn":
                    net.pooler.hidden_dim = 2 * width
                net.output_dim = width * (2 if net.use_context else 1)

    def network(self, name: str) -> CootNetworkConfig:
        if name not in NETWORK_NAMES:
            raise KeyError(f"unknown COOT network {name!r} (one of {NETWORK_NAMES})")
        return getattr(self, name)

    def network_input_dim(self, name: str) -> int:
        """Input feature size of each network (global nets read the local net's output)."""
        return {
            "net_video_local": self.video_feature_dim,
            "net_video_global": self.net_video_local.output_dim,
            "net_text_local": self.text_feature_dim,
            "net_text_global": self.net_text_local.output_dim,
        }[name]

    @classmethod
    def from_original(cls, original: Mapping[str, Any], **overrides: Any) -> "CootConfig":
        """The config of an original experiment (``config/retrieval/paper2020/*.yaml``, ``same_as``
        resolved): the four ``net_*`` blocks, the feature sizes and clip settings of
        ``dataset_val`` (else ``dataset_train``: ``vid_feat_dim``, ``text_feat_dim``,
        ``max_frames``, ``add_stop_frame``, ``expand_segments``) and the ``train`` block's losses
        (``contrastive_loss_config``, ``loss_cycle_cons``). ``overrides`` (vtzoo fields) go last.
        """
        missing = [name for name in NETWORK_NAMES if not isinstance(original.get(name), Mapping)]
        dataset = original.get("dataset_val") or original.get("dataset_train") or {}
        missing += [f"dataset_val.{key}" for key in ("vid_feat_dim", "text_feat_dim") if key not in dataset]
        if missing:
            raise ConfigError(f"COOT: the original config lacks {', '.join(missing)}")
        values: dict[str, Any] = {"video_feature_dim": int(dataset["vid_feat_dim"]),
                                  "text_feature_dim": int(dataset["text_feat_dim"])}  # fmt: skip
        values.update({name: network_from_original(original[name]) for name in NETWORK_NAMES})
        values.update({key: int(dataset[key]) for key in ("max_frames", "add_stop_frame", "expand_segments") if key in dataset})
        train = original.get("train") or {}
        contrastive = train.get("contrastive_loss_config") or {}
        values.update({key: float(contrastive[key]) for key in _LOSS_WEIGHTS if key in contrastive})
        if "loss_cycle_cons" in train:
            values["loss_cycle_cons"] = float(train["loss_cycle_cons"])
        values.update(overrides)
        return cls(**values)


_LOSS_WEIGHTS = ("margin", "weight_high", "weight_high_internal", "weight_low", "weight_low_internal", "weight_context",
                 "weight_context_internal")  # fmt: skip


def _name_of(value: Any) -> str:
    """Original sub-configs are either a name or a dict with a ``name``."""
    return value["name"] if isinstance(value, Mapping) else str(value)


def _attention_from_original(block: Mapping[str, Any]) -> AttentionConfig:
    return AttentionConfig(
        hidden_dim=int(block["hidden_dim"]),
        num_layers=int(block["num_layers"]),
        num_heads=int(block["num_heads"]),
        pointwise_ff_dim=int(block["pointwise_ff_dim"]),
        activation=_name_of(block["activation"]),
        dropout=float(block["dropout"]),
        norm=_name_of(block["norm"]),
    )


def _mlp_from_original(block: Mapping[str, Any]) -> MLPConfig:
    return MLPConfig(
        output_dim=int(block["output_dim"]),
        num_layers=int(block["num_layers"]),
        hidden_dim=int(block["hidden_dim"]),
        activation_middle=_name_of(block["activation_middle"]),
        activation_output=_name_of(block["activation_output"]),
        dropout_middle=float(block["dropout_middle"]),
        dropout_output=float(block["dropout_output"]),
        norm_middle=_name_of(block["norm_middle"]),
        norm_output=_name_of(block["norm_output"]),
        residual=str(block["residual"]),
    )


def network_from_original(block: Mapping[str, Any]) -> CootNetworkConfig:
    """One original ``net_*`` block -> :class:`CootNetworkConfig`."""
    block = copy.deepcopy(dict(block))
    if block.get("name", "transformer") != "transformer":
        raise ValueError(f"COOT network type {block.get('name')!r} is not supported (only 'transformer')")
    pooler = block["pooler_config"]
    pooler = {"name": pooler} if isinstance(pooler, str) else pooler
    net = CootNetworkConfig(
        output_dim=int(block["output_dim"]),
        use_input_fc=bool(block["use_input_fc"]),
        positional_encoding=str(block["positional_encoding"]),
        add_local_cls_token=bool(block.get("add_local_cls_token", False)),
        dropout_input=float(block.get("dropout_input", 0.0)),
        norm_input=_name_of(block["norm_input"]),
        selfatn=_attention_from_original(block["selfatn_config"]),
        use_context=bool(block.get("use_context", False)),
        use_output_fc=bool(block.get("use_output_fc", False)),
        pooler=PoolerConfig(
            name=str(pooler["name"]),
            hidden_dim=int(pooler.get("hidden_dim", 0)),
            num_heads=int(pooler.get("num_heads", 1)),
            num_layers=int(pooler.get("num_layers", 1)),
            dropout=float(pooler.get("dropout", 0.0)),
            activation=_name_of(pooler.get("activation", "relu")),
        ),
        linear_out=bool(block.get("linear_out", False)),
    )
    if net.use_input_fc:
        net.input_fc = _mlp_from_original(block["input_fc_config"])
    if net.use_context:
        net.crossatn = _attention_from_original(block["crossatn_config"])
    if net.use_output_fc:
        net.output_fc = _mlp_from_original(block["output_fc_config"])
    return net
