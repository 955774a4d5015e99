"""MoViNet A0-A5 (Kondratyuk et al., 2021), base and stream, with an explicit streaming state.

Module names follow the reference PyTorch port (``conv1``, ``blocks.b{i}_l{j}.{expand,deep,se,
project,res}``, ``conv7``, ``classifier.{0,3}``), so its released state dicts load with a plain
key check. Unlike the port, no layer keeps activations between calls: every causal layer reads
its history from a :class:`StreamState` passed in and writes the updated history to a new one,
the way the official TF implementation threads its ``states`` dict.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtzoo.errors import InputError
from vtzoo.modeling import PretrainedModel
from vtzoo.operators.movinet.config import MovinetConfig
from vtzoo.precision import as_channels_last_3d, prepare_3d_cnn

Triple = tuple[int, int, int]


class MovinetInputError(InputError):
    """A clip or chunk the model cannot take (wrong channels, size, batch, variant or length)."""


# -- activations ------------------------------------------------------------------------------
class Swish(nn.Module):
    """x * sigmoid(x) (the TF models' "swish")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class HardSigmoidGate(nn.Module):
    """clamp(0.2 x + 0.5, 0, 1): the Keras 2 ``hard_sigmoid`` the stream weights were trained with.

    Not ``torch.nn.Hardsigmoid`` (x/6 + 0.5): the reference port and the TF-Hub stream models use
    this slope, and gates saturate at different inputs with the other one.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (0.2 * x + 0.5).clamp(min=0.0, max=1.0)


class HardSigmoidRelu6Gate(nn.Module):
    """relu6(x + 3) / 6: what today's TF Model Garden calls ``hard_sigmoid`` (= torch's Hardsigmoid)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


_GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid_keras2": HardSigmoidGate,
    "hard_sigmoid_relu6": HardSigmoidRelu6Gate,
}


# -- streaming state --------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamState:
    """Everything a stream model remembers between chunks; a new object after every step.

    ``tensors`` maps a layer's name to its history: the last k_t-1 frames entering a causal
    temporal convolution, or the running sum of a cumulative average. A missing entry means "no
    frame seen yet" (zeros / empty sum), so a fresh state holds no tensors at all.
    """

    signature: tuple
    batch_size: int
    height: int
    width: int
    frames_seen: int = 0
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return f"{self.signature[0]}-{'stream' if self.signature[1] else 'base'}"


class _StreamPass:
    """Reads the previous state and collects the next one during one forward pass."""

    def __init__(self, previous: dict[str, torch.Tensor], frames_seen: int):
        self.previous = previous
        self.frames_seen = frames_seen
        self.updated: dict[str, torch.Tensor] = {}

    def prepend_history(self, key: str, x: torch.Tensor, size: int) -> torch.Tensor:
        """Put the last ``size`` frames this layer saw (zeros at the start) in front of ``x``."""
        history = self.previous.get(key)
        if history is None:
            history = x.new_zeros((x.shape[0], x.shape[1], size, *x.shape[3:]))
        full = torch.cat((history, x), dim=2)
        # keeps the last `size` frames even when the chunk is shorter than the buffer
        self.updated[key] = full[:, :, -size:].clone()
        return full

    def cumulative_mean(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Frame t gets the mean of frames 0..t since the stream began (x: B, C, T, 1, 1)."""
        running = torch.cumsum(x, dim=2)
        previous_sum = self.previous.get(key)
        if previous_sum is not None:
            running = running + previous_sum
        self.updated[key] = running[:, :, -1:].clone()
        frames = x.shape[2]
        # frames_seen is an int, or a 0-d tensor in the traced single-frame step (StreamStep)
        counts = self.frames_seen + torch.arange(1, frames + 1, device=x.device)
        return running / counts.to(running.dtype).view(1, 1, frames, 1, 1)


# -- padding and pooling ----------------------------------------------------------------------
def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one dimension: the odd extra pixel goes after (bottom/right)."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def pad_same_spatial(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    top, bottom = tf_same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = tf_same_padding(x.shape[-1], kernel[1], stride[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom))


class TFSameAvgPool(nn.Module):
    """3×3 stride-2 spatial average pool with TF "same" padding; padded cells are not counted."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_padding(x.shape[-2], 3, 2)
        left, right = tf_same_padding(x.shape[-1], 3, 2)
        pad = (left, right, top, bottom)
        # mean over all 9 cells (zeros included) / share of real cells; no divisor_override,
        # which graph converters (OpenVINO) do not take
        b, c, t = x.shape[:3]
        # a 2D pool over (B, C*T) maps: the kernel is 1 in time (OpenVINO's CPU plugin cannot
        # compile this 3D average pool)
        means = F.avg_pool2d(F.pad(x, pad).flatten(1, 2), 3, stride=2)
        means = means.view(b, c, t, *means.shape[-2:])
        return means / _real_cell_shares(x.shape[-2], x.shape[-1], x.dtype, x.device)


@functools.lru_cache(maxsize=64)
def _real_cell_shares(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Share of real (unpadded) cells in each 3x3 stride-2 "same" window: a constant per size."""
    top, bottom = tf_same_padding(height, 3, 2)
    left, right = tf_same_padding(width, 3, 2)
    ones = torch.ones((1, 1, height, width), device=device)
    with torch.inference_mode(False), torch.no_grad():
        return F.avg_pool2d(F.pad(ones, (left, right, top, bottom)), 3, stride=2).to(dtype)[:, :, None]


class AvgPool3d(nn.AvgPool3d):
    """``nn.AvgPool3d`` with a 1-frame kernel, computed as a 2D pool over (B, C*T) maps: CPU
    PyTorch has no bf16 avg_pool3d kernel and OpenVINO's CPU plugin cannot compile this one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride, padding = (tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3
                                   for v in (self.kernel_size, self.stride, self.padding))
        if kernel[0] != 1 or stride[0] != 1 or padding[0] != 0:
            return super().forward(x)
        b, c, t = x.shape[:3]
        out = F.avg_pool2d(x.flatten(1, 2), kernel[1:], stride[1:], padding[1:], self.ceil_mode,
                           self.count_include_pad, self.divisor_override)
        return out.view(b, c, t, *out.shape[-2:])


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of ``divisor`` without losing more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def sinusoidal_frame_encoding(start: int, frames: int, channels: int, device, dtype) -> torch.Tensor:
    """The TF MoViNet positional encoding of frames start..start+frames-1, shape (1, C, T, 1, 1).

    Channel i uses the angle rate 1/10000^(2*(i//2)/C); the output lists the sines of the even
    channels first, then the cosines of the odd channels (concatenated, not interleaved).
    """
    positions = torch.arange(start, start + frames, device=device, dtype=torch.float32)[:, None]
    index = torch.arange(channels, device=device)[None, :]
    rates = 1.0 / torch.pow(10_000.0, (2 * (index // 2)).float() / channels)
    radians = positions * rates
    encoding = torch.cat((torch.sin(radians[:, 0::2]), torch.cos(radians[:, 1::2])), dim=-1)
    return encoding.t().reshape(1, channels, frames, 1, 1).to(dtype)


# -- layers -----------------------------------------------------------------------------------
class ConvBlock3D(nn.Module):
    """A k_t×k×k convolution (+ BatchNorm + activation), as 3D or as (2+1)D, causal or not.

    ``conv_1`` is the whole 3D conv, or the spatial k×k part of a (2+1)D split; ``conv_2`` is the
    temporal (k_t, 1) part with its own BatchNorm and activation. A causal layer puts the last
    k_t-1 frames it saw in front of the input of its temporal convolution instead of padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: Triple,
        causal: bool,
        conv_type: str,
        tf_like: bool,
        stride: Triple = (1, 1, 1),
        padding: Triple = (0, 0, 0),
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
        activation_layer: Callable[[], nn.Module] | None = None,
        norm_eps: float = 1e-3,
        bias: bool = False,
    ):
        super().__init__()
        if tf_like:
            if kernel_size[0] % 2 == 0 or stride[0] != 1:
                raise ValueError("TF-style padding needs an odd temporal kernel and temporal stride 1")
            padding = ((kernel_size[0] - 1) // 2, 0, 0)
        if causal:
            padding = (0, padding[1], padding[2])
        self.kernel_size, self.stride = kernel_size, stride
        self.causal, self.conv_type, self.tf_like = causal, conv_type, tf_like
        self.history_frames = kernel_size[0] - 1 if causal else 0
        self.state_key = ""  # set by the model: this layer's name in a StreamState

        def unit(conv: nn.Module, channels: int) -> nn.Sequential:
            name = "conv3d" if isinstance(conv, nn.Conv3d) else "conv2d"
            norm = norm_layer(channels, eps=norm_eps) if norm_layer is not None else nn.Identity()
            act = activation_layer() if activation_layer is not None else nn.Identity()
            return nn.Sequential(OrderedDict([(name, conv), ("norm", norm), ("act", act)]))

        self.conv_2: nn.Sequential | None = None
        if conv_type == "3d":
            conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
            self.conv_1 = unit(conv, out_channels)
        else:
            spatial = nn.Conv2d(
                in_channels, out_channels, kernel_size[1:], stride[1:], padding[1:], groups=groups, bias=bias
            )
            self.conv_1 = unit(spatial, out_channels)
            if kernel_size[0] > 1:
                temporal = nn.Conv2d(
                    in_channels, out_channels, (kernel_size[0], 1), (stride[0], 1), (padding[0], 0),
                    groups=groups, bias=bias,
                )
                self.conv_2 = unit(temporal, out_channels)

    def forward(self, x: torch.Tensor, stream: _StreamPass | None = None) -> torch.Tensor:
        if self.tf_like:
            x = pad_same_spatial(x, self.kernel_size[1:], self.stride[1:])
        if self.history_frames and self.conv_2 is None:
            x = stream.prepend_history(self.state_key, x, self.history_frames)
        if self.conv_type == "3d":
            return self.conv_1(x)
        frames = x.shape[2]
        x = rearrange(self.conv_1(rearrange(x, "b c t h w -> (b t) c h w")), "(b t) c h w -> b c t h w", t=frames)
        if self.conv_2 is not None:
            if self.history_frames:
                x = stream.prepend_history(self.state_key, x, self.history_frames)
            width = x.shape[-1]
            x = rearrange(self.conv_2(rearrange(x, "b c t h w -> b c t (h w)")), "b c t (h w) -> b c t h w", w=width)
        return x


class SqueezeExcitation(nn.Module):
    """Channel gating from a pooled summary; causal models pool over frames seen so far only.

    Causal input of ``fc1``: [cumulative mean over frames 0..t, mean of frame t] on channels
    (2C), plus, for the TF A3-A5 stream models, a scaled sinusoidal encoding of the frame index.
    """

    def __init__(
        self,
        channels: int,
        *,
        causal: bool,
        conv_type: str,
        activation_layer: Callable[[], nn.Module],
        gate_layer: Callable[[], nn.Module],
        use_positional_encoding: bool = False,
    ):
        super().__init__()
        self.causal = causal
        inputs = channels * (2 if causal else 1)
        squeeze = make_divisible(channels // 4 * (2 if causal else 1), 8)
        common = dict(kernel_size=(1, 1, 1), causal=causal, conv_type=conv_type, tf_like=False, bias=True)
        self.fc1 = ConvBlock3D(inputs, squeeze, **common)
        self.activation_1 = activation_layer()
        self.fc2 = ConvBlock3D(squeeze, channels, **common)
        self.activation_2 = gate_layer()
        self.pos_encoding_scale = nn.Parameter(torch.zeros(())) if use_positional_encoding else None
        self.state_key = ""

    def forward(self, x: torch.Tensor, stream: _StreamPass | None = None) -> torch.Tensor:
        if self.causal:
            per_frame = x.mean(dim=(3, 4), keepdim=True)
            summary = torch.cat((stream.cumulative_mean(self.state_key, per_frame), per_frame), dim=1)
            if self.pos_encoding_scale is not None:
                encoding = sinusoidal_frame_encoding(
                    stream.frames_seen, summary.shape[2], summary.shape[1], summary.device, summary.dtype
                )
                summary = summary + self.pos_encoding_scale * encoding
        else:
            summary = F.adaptive_avg_pool3d(x, 1)
        scale = self.activation_2(self.fc2(self.activation_1(self.fc1(summary))))
        return scale * x


class MovinetBlock(nn.Module):
    """Inverted bottleneck: expand (1×1×1) → depthwise k_t×k×k → SE → project, ReZero residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expanded_channels: int,
        kernel_size: Triple,
        stride: Triple,
        padding: Triple,
        padding_avg: Triple,
        config: MovinetConfig,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[[], nn.Module],
        gate_layer: Callable[[], nn.Module],
    ):
        super().__init__()
        common = dict(
            causal=config.causal, conv_type=config.conv_type, tf_like=config.tf_like,
            norm_layer=norm_layer, norm_eps=config.norm_eps,
        )
        # Every published block widens; the port only builds `expand` when it does.
        self.expand = (
            ConvBlock3D(in_channels, expanded_channels, kernel_size=(1, 1, 1), activation_layer=activation_layer, **common)
            if expanded_channels != out_channels
            else None
        )
        self.deep = ConvBlock3D(
            expanded_channels, expanded_channels, kernel_size=kernel_size, stride=stride, padding=padding,
            groups=expanded_channels, activation_layer=activation_layer, **common,
        )
        self.se = SqueezeExcitation(
            expanded_channels, causal=config.causal, conv_type=config.conv_type,
            activation_layer=activation_layer, gate_layer=gate_layer,
            use_positional_encoding=config.use_positional_encoding,
        )
        self.project = ConvBlock3D(expanded_channels, out_channels, kernel_size=(1, 1, 1), **common)
        self.res: nn.Sequential | None = None
        if stride != (1, 1, 1) or in_channels != out_channels:
            layers: list[nn.Module] = []
            if stride != (1, 1, 1):
                pool = TFSameAvgPool() if config.tf_like else AvgPool3d((1, 3, 3), stride, padding_avg)
                layers.append(pool)
            layers.append(ConvBlock3D(in_channels, out_channels, kernel_size=(1, 1, 1), **common))
            self.res = nn.Sequential(*layers)
        self.alpha = nn.Parameter(torch.tensor(0.0))  # ReZero: the residual branch starts switched off

    def forward(self, x: torch.Tensor, stream: _StreamPass | None = None) -> torch.Tensor:
        shortcut = self.res(x) if self.res is not None else x
        y = self.expand(x, stream) if self.expand is not None else x
        y = self.project(self.se(self.deep(y, stream), stream), stream)
        return shortcut + self.alpha * y


# -- the network ------------------------------------------------------------------------------
class MovinetModel(PretrainedModel):
    """MoViNet backbone + Kinetics classifier head, base (non-causal) or stream (causal)."""

    family = "movinet"
    config_class = MovinetConfig

    def __init__(self, config: MovinetConfig):
        super().__init__(config)
        arch = config.architecture
        is_3d = config.conv_type == "3d"
        norm_layer = nn.BatchNorm3d if is_3d else nn.BatchNorm2d
        activation_layer = Swish if is_3d else nn.Hardswish
        gate = config.se_gate if config.se_gate != "auto" else ("sigmoid" if is_3d else "hard_sigmoid_keras2")
        gate_layer = _GATES[gate]
        common = dict(causal=config.causal, conv_type=config.conv_type, tf_like=config.tf_like, norm_eps=config.norm_eps)

        stem = arch["stem"]
        self.conv1 = ConvBlock3D(
            3, stem["out_channels"], kernel_size=stem["kernel_size"], stride=stem["stride"], padding=stem["padding"],
            norm_layer=norm_layer, activation_layer=activation_layer, **common,
        )
        blocks: dict[str, MovinetBlock] = {}
        channels = stem["out_channels"]
        for i, stage in enumerate(arch["stages"]):
            for j, (out, expanded, kernel, stride, padding, padding_avg) in enumerate(stage):
                blocks[f"b{i}_l{j}"] = MovinetBlock(
                    channels, out, expanded, kernel, stride, padding, padding_avg,
                    config, norm_layer, activation_layer, gate_layer,
                )
                channels = out
        self.blocks = nn.ModuleDict(blocks)
        self.conv7 = ConvBlock3D(
            channels, arch["head_channels"], kernel_size=(1, 1, 1),
            norm_layer=norm_layer, activation_layer=activation_layer, **common,
        )
        # Two 1×1×1 convolutions with bias (not Linear layers), Swish between them in both modes.
        self.classifier = nn.Sequential(
            ConvBlock3D(arch["head_channels"], config.hidden_dim, kernel_size=(1, 1, 1), bias=True, **common),
            Swish(),
            nn.Dropout(p=config.dropout),
            ConvBlock3D(config.hidden_dim, config.num_classes, kernel_size=(1, 1, 1), bias=True, **common),
        )
        for name, module in self.named_modules():
            if isinstance(module, (ConvBlock3D, SqueezeExcitation)):
                module.state_key = name

    # -- pieces ----------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        return self.config.architecture["head_channels"]

    @property
    def signature(self) -> tuple:
        """What a stream state must have been made for (variant, mode and layer layout)."""
        c = self.config
        return (c.model_id, c.causal, c.conv_type, c.tf_like, c.use_positional_encoding)

    def feature_map(self, video: torch.Tensor, stream: _StreamPass | None = None) -> torch.Tensor:
        """conv7 output (B, C, T, h, w) of a (B, 3, T, H, W) clip in [0, 1]."""
        x = self.conv1(as_channels_last_3d(video, self), stream)
        for block in self.blocks.values():
            x = block(x, stream)
        return self.conv7(x, stream)

    def pool(self, features: torch.Tensor, stream: _StreamPass | None = None) -> torch.Tensor:
        """(B, C): the mean over the clip; for stream models the running mean at the last frame."""
        if not self.config.causal:
            return features.mean(dim=(2, 3, 4))
        per_frame = features.mean(dim=(3, 4), keepdim=True)
        return stream.cumulative_mean("cgap", per_frame)[:, :, -1, 0, 0]

    def logits_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled[:, :, None, None, None]).flatten(1).float()

    def apply_precision(self, precision: str) -> None:
        """bf16: the whole network in bf16 and ``channels_last_3d``; the stream state follows
        (docs/operators/movinet.md)."""
        super().apply_precision(precision)
        prepare_3d_cnn(self, precision)

    # -- whole clips -----------------------------------------------------------------------
    def forward_pooled(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled features) of whole clips; stream models start from a fresh state."""
        self.check_clip(video)
        stream = _StreamPass({}, 0) if self.config.causal else None
        pooled = self.pool(self.feature_map(video, stream), stream)
        return self.logits_from_pooled(pooled), pooled.float()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.forward_pooled(video)[0]

    # -- streaming -------------------------------------------------------------------------
    def init_state(self, batch_size: int, height: int, width: int) -> StreamState:
        """A fresh stream for ``batch_size`` clips of ``height``×``width`` frames."""
        if not self.config.causal:
            raise MovinetInputError(
                f"MoViNet-{self.config.model_id.upper()} base is not causal: streaming needs a stream variant"
            )
        return StreamState(self.signature, int(batch_size), int(height), int(width))

    def step(self, chunk: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, torch.Tensor, StreamState]:
        """Feed (B, 3, T, H, W) frames (any T >= 1) after ``state``; returns the logits and pooled
        features at the chunk's last frame given every frame since the state was made, and the
        next state. ``state`` itself is left unchanged, so a stream can be forked or replayed.

        Single frames go through the accelerated step when a runtime took it (see
        :meth:`accelerate`): one call for the whole network instead of one per layer.
        """
        self.check_chunk(chunk, state)
        stepper = self.__dict__.get("_frame_step")
        if stepper is not None and chunk.shape[2] == 1:
            return stepper(chunk, state)
        stream = _StreamPass(state.tensors, state.frames_seen)
        pooled = self.pool(self.feature_map(chunk, stream), stream)
        new_state = StreamState(
            state.signature, state.batch_size, state.height, state.width,
            state.frames_seen + chunk.shape[2], stream.updated,
        )
        return self.logits_from_pooled(pooled), pooled.float(), new_state

    def accelerate(self, runners) -> None:
        """Stream models: the single-frame step as one module for ``runners`` (torch.compile /
        OpenVINO), with the stream state as explicit inputs and outputs. Set up lazily for the
        frame size of the first stream (the state's shapes depend on it)."""
        if self.config.causal and not self.config.use_positional_encoding:  # A3-A5 stream: eager only
            self.__dict__["_frame_step"] = FrameStepper(self, runners)

    # -- input checks ----------------------------------------------------------------------
    def check_clip(self, video: torch.Tensor, min_frames: int | None = None) -> None:
        if video.dim() != 5:
            raise MovinetInputError(f"MoViNet expects (B, 3, T, H, W) clips, got shape {tuple(video.shape)}")
        if video.shape[1] != 3:
            raise MovinetInputError(
                f"MoViNet expects RGB clips (3 channels), got {video.shape[1]} channels in shape {tuple(video.shape)}"
                " (convert grayscale/RGBA video to RGB first)"
            )
        if min_frames is None:
            min_frames = 1 if self.config.causal else self.config.max_temporal_kernel
        if video.shape[2] < min_frames:
            raise MovinetInputError(
                f"MoViNet-{self.config.model_id.upper()} {self.config.mode} needs at least {min_frames} frames "
                f"(its largest temporal kernel), got {video.shape[2]}"
            )

    def check_chunk(self, chunk: torch.Tensor, state: StreamState) -> None:
        if not isinstance(state, StreamState):
            raise MovinetInputError(f"expected a StreamState from init_state(), got {type(state).__name__}")
        if state.signature != self.signature:
            raise MovinetInputError(
                f"this stream state was made for MoViNet {state.signature}, not for this model {self.signature}"
            )
        self.check_clip(chunk, min_frames=1)
        if chunk.shape[0] != state.batch_size:
            raise MovinetInputError(
                f"chunk batch size {chunk.shape[0]} differs from the stream's batch size {state.batch_size}"
            )
        if tuple(chunk.shape[-2:]) != (state.height, state.width):
            raise MovinetInputError(
                f"chunk frames are {chunk.shape[-2]}x{chunk.shape[-1]}, the stream was made for "
                f"{state.height}x{state.width}"
            )


class StreamStep(nn.Module):
    """One frame of a stream model with its state as tensors: ``(frame, frames_seen, *history)``
    -> ``(logits, pooled, *new_history)``, ``history`` in the order of ``keys``. Every tensor has
    a fixed shape, so a runtime can compile or convert the whole per-frame network at once."""

    def __init__(self, model: "MovinetModel", keys: list[str]):
        super().__init__()
        self.model, self.keys = model, list(keys)

    def forward(self, frame: torch.Tensor, frames_seen: torch.Tensor, *history: torch.Tensor):
        stream = _StreamPass(dict(zip(self.keys, history)), frames_seen)
        pooled = self.model.pool(self.model.feature_map(frame, stream), stream)
        logits = self.model.classifier(pooled[:, :, None, None, None]).flatten(1)
        return (logits, pooled, *[stream.updated[key] for key in self.keys])


class FrameStepper:
    """Runs :class:`StreamStep` through a runtime, one runner per (batch, height, width)."""

    def __init__(self, model: "MovinetModel", runners):
        self.model, self.runners, self._by_shape = model, runners, {}

    def _runner(self, frame: torch.Tensor):
        shape = tuple(frame.shape)
        if shape not in self._by_shape:
            # one eager frame from a fresh state gives the state's keys and shapes
            stream = _StreamPass({}, 0)
            with torch.inference_mode():
                self.model.pool(self.model.feature_map(torch.zeros_like(frame), stream), stream)
            zeros = {key: torch.zeros_like(value) for key, value in stream.updated.items()}
            keys = sorted(zeros)
            module = StreamStep(self.model, keys)
            example = (torch.zeros_like(frame), torch.tensor(0.0), *[zeros[k].float() for k in keys])
            name = f"movinet-{self.model.config.model_id}-step-{'x'.join(map(str, shape))}"
            self._by_shape[shape] = (keys, zeros, self.runners(name, module, example, {}))
        return self._by_shape[shape]

    def __call__(self, frame: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, torch.Tensor, StreamState]:
        keys, zeros, runner = self._runner(frame)
        history = [state.tensors.get(key, zeros[key]) for key in keys]
        seen = torch.tensor(float(state.frames_seen))
        logits, pooled, *updated = runner(frame, seen, *history)
        new_state = StreamState(state.signature, state.batch_size, state.height, state.width,
                                state.frames_seen + 1, dict(zip(keys, updated)))
        return logits.float(), pooled.float(), new_state


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MovinetModel",
    "MovinetInputError",
    "StreamState",
    "count_parameters",
    "make_divisible",
    "sinusoidal_frame_encoding",
]
