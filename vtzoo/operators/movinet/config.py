"""MoViNet configuration: one dataclass covers A0-A5, base and stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vtzoo.errors import ConfigError
from vtzoo.operators.movinet.architectures import ARCHITECTURES

CONV_TYPES = ("3d", "2plus1d")
# "auto" follows the reference port: sigmoid for "3d", clamp(0.2x+0.5, 0, 1) for "2plus1d".
SE_GATES = ("auto", "sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_relu6")


@dataclass
class MovinetConfig:
    """Every hyper-parameter of a MoViNet. Defaults: A0 base, the released Kinetics-600 settings.

    ``causal`` selects the stream model (causal temporal convolutions with stream buffers,
    cumulative-average squeeze-excitation and head). ``conv_type`` follows the reference port:
    ``"3d"`` uses 3D convolutions, BatchNorm3d, Swish and a sigmoid SE gate (the released base
    models); ``"2plus1d"`` splits each k_t×k×k convolution into a spatial and a temporal 2D
    convolution, each with its own BatchNorm, and uses Hardswish and the gate
    clamp(0.2x + 0.5, 0, 1) (the released stream models). ``tf_like`` computes TensorFlow "same"
    padding from the input size on every call, as the converted TF weights need.
    """

    model_id: str = "a0"
    causal: bool = False
    conv_type: str = "3d"
    tf_like: bool = True
    num_classes: int = 600
    hidden_dim: int = 2048
    dropout: float = 0.2
    norm_eps: float = 1e-3
    # Official TF stream models A3-A5 add a learned-scale sinusoidal encoding of the frame index
    # to the squeeze-excitation input; the reference port has no such layer.
    use_positional_encoding: bool = False
    # SE gate. The port (and the TF-Hub stream models it was checked against) use Keras 2's
    # hard_sigmoid clamp(0.2x+0.5, 0, 1); today's TF Model Garden maps "hard_sigmoid" to
    # relu6(x+3)/6. Choose "hard_sigmoid_relu6" for TF checkpoints trained/evaluated with that.
    se_gate: str = "auto"

    def __post_init__(self) -> None:
        self.model_id = self.model_id.lower()
        if self.model_id not in ARCHITECTURES:
            raise ValueError(f"unknown MoViNet model_id {self.model_id!r} (known: {', '.join(ARCHITECTURES)})")
        if self.conv_type not in CONV_TYPES:
            raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {self.conv_type!r}")
        if self.se_gate not in SE_GATES:
            raise ValueError(f"se_gate must be one of {SE_GATES}, got {self.se_gate!r}")
        if self.use_positional_encoding and not self.causal:
            raise ValueError("use_positional_encoding applies to causal (stream) models only")

    @classmethod
    def from_original(cls, original: Mapping[str, Any]) -> "MovinetConfig":
        """The reference port's ``MoViNet(cfg, causal=..., pretrained=..., num_classes=...,
        conv_type=..., tf_like=...)``: its arguments with the architecture's ``name`` (``"A0"``),
        or a golden case's config.json (``variant`` or ``model_cfg.name``, ``mode``,
        ``constructor``). As in the port, ``pretrained=True`` forces the released weights'
        settings (TF padding, 600 classes, 3D convolutions for base, (2+1)D for stream)."""
        args = dict(original.get("constructor") or original)
        variant = original.get("variant") or (original.get("model_cfg") or {}).get("name") or args.get("name")
        if not variant:
            raise ConfigError("original MoViNet config names no architecture ('variant', 'model_cfg.name' or 'name')")
        causal = bool(args.get("causal", original.get("mode") == "stream"))
        if args.get("pretrained"):
            args.update(tf_like=True, num_classes=600, conv_type="2plus1d" if causal else "3d")
        return cls(
            model_id=str(variant).lower(),
            causal=causal,
            conv_type=args.get("conv_type", "3d"),
            tf_like=bool(args.get("tf_like", False)),
            num_classes=int(args.get("num_classes", 600)),
            use_positional_encoding=bool(args.get("use_positional_encoding", False)),
        )

    @property
    def architecture(self) -> dict[str, Any]:
        return ARCHITECTURES[self.model_id]

    @property
    def mode(self) -> str:
        return "stream" if self.causal else "base"

    @property
    def max_temporal_kernel(self) -> int:
        kernels = [block[2][0] for stage in self.architecture["stages"] for block in stage]
        return max([self.architecture["stem"]["kernel_size"][0], *kernels])
