"""S3D-G video network of MIL-NCE (HowTo100M), the per-second feature extractor of VideoCLIP and COOT.

The network is fixed by its paper (no width or depth knobs); module and parameter names follow
the original release (``conv1.conv1.weight``, ``mixed_3b.conv_b1_b.bn2.bias``, ``fc.weight``,
...) so that its checkpoint loads after dropping the unused word-embedding text branch.

Input: ``(B, 3, T, H, W)`` RGB in ``[0, 1]`` (``uint8 / 255``, no mean/std), T and H, W even
when ``space_to_depth`` is on. Output: :class:`S3DOutput` with the 512-d joint-space
``video_embedding`` and the 1024-d pooled ``mixed_5c`` feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vtzoo.modeling import PretrainedModel
from vtzoo.precision import as_channels_last_3d, prepare_3d_cnn

# Inception blocks in forward order: name -> (in, b0, b1 reduce, b1, b2 reduce, b2, b3).
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}
MIXED_5C_DIM = 1024
# modules after the stem, in forward order (``gating`` follows ``conv_2c`` and is always applied)
STAGES = ("maxpool_2a", "conv_2b", "conv_2c", "gating", "maxpool_3a", "mixed_3b", "mixed_3c", "maxpool_4a",
          "mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f", "maxpool_5a", "mixed_5b", "mixed_5c")  # fmt: skip


@dataclass
class S3DConfig:
    """S3D-G hyper-parameters. Defaults = the released MIL-NCE HowTo100M network."""

    # size of ``video_embedding`` (the ``fc`` after the pooled Mixed_5c feature)
    embedding_dim: int = 512
    # 2x2x2 space-to-depth stem (the released weights); False = the plain 7x7x7 stride-2 stem
    space_to_depth: bool = True

    @classmethod
    def from_original(cls, original: Mapping[str, Any]) -> "S3DConfig":
        """The original ``S3D(dict_path, num_classes=512, gating=True, space_to_depth=True)``
        arguments (or a golden case's config.json, which records them under ``constructor``).

        ``gating`` is not read: the original ignores it (its gating module overwrites the flag
        and the inception blocks are always built gated), so gating=False builds the same network.
        """
        args = original.get("constructor", original)
        return cls(embedding_dim=int(args.get("num_classes", 512)), space_to_depth=bool(args.get("space_to_depth", True)))


@dataclass
class S3DOutput:
    video_embedding: torch.Tensor  # (B, embedding_dim): fc(mixed_5c), the 512-d joint-space feature
    mixed_5c: torch.Tensor  # (B, 1024): mean over T, H, W of the last block


class STConv3d(nn.Module):
    """Conv3d (no bias) + BatchNorm + ReLU; ``separable`` splits a k*k*k kernel into 1*k*k then k*1*1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
        separable: bool = False,
    ):
        super().__init__()
        self.separable = separable
        if separable:
            k_t, k_h, k_w = kernel_size
            p = padding if isinstance(padding, int) else padding[1]
            p_t = padding if isinstance(padding, int) else padding[0]
            self.conv1 = nn.Conv3d(in_channels, out_channels, (1, k_h, k_w), padding=(0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(out_channels)
            self.conv2 = nn.Conv3d(out_channels, out_channels, (k_t, 1, 1), padding=(p_t, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(out_channels)
        else:
            self.conv1 = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
            self.bn1 = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    """Channel gating of S3D-G: sigmoid(Linear(mean over T, H, W)) scales each channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class InceptionBlock(nn.Module):
    """Four gated branches (1x1x1; 1x1x1 -> sep 3x3x3; 1x1x1 -> sep 3x3x3; maxpool -> 1x1x1), concatenated."""

    def __init__(self, in_channels: int, b0: int, b1_reduce: int, b1: int, b2_reduce: int, b2: int, b3: int):
        super().__init__()
        self.conv_b0 = STConv3d(in_channels, b0, (1, 1, 1))
        self.conv_b1_a = STConv3d(in_channels, b1_reduce, (1, 1, 1))
        self.conv_b1_b = STConv3d(b1_reduce, b1, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = STConv3d(in_channels, b2_reduce, (1, 1, 1))
        self.conv_b2_b = STConv3d(b2_reduce, b2, (3, 3, 3), padding=1, separable=True)
        # PyTorch's own padding here (pads with -inf), unlike the TF-style stem pools
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = STConv3d(in_channels, b3, (1, 1, 1))
        self.gating_b0 = SelfGating(b0)
        self.gating_b1 = SelfGating(b1)
        self.gating_b2 = SelfGating(b2)
        self.gating_b3 = SelfGating(b3)
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat((b0, b1, b2, b3), dim=1)


class TFSamePadMaxPool3d(nn.Module):
    """Max pool imitating TensorFlow 'SAME' the way the original does it.

    The zero padding is fixed from kernel and stride alone (total ``max(k - s, 0)`` per dim, the
    smaller half in front) and the pool uses ``ceil_mode=True``: for odd sizes this differs from
    true 'SAME', and the released weights were used with exactly this, so it is kept.
    """

    def __init__(self, kernel_size: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        pads: list[int] = []
        for k, s in reversed(list(zip(kernel_size, stride))):  # F.pad wants W first, then H, then T
            total = max(k - s, 0)
            pads += [total // 2, total - total // 2]
        self.padding = tuple(pads)
        self.pool = nn.MaxPool3d(kernel_size, stride, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.padding, value=0.0))


def space_to_depth(video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, 8C, T/2, H/2, W/2); new channel = ((dt * 2 + dh) * 2 + dw) * C + c."""
    b, c, t, h, w = video.shape
    if t % 2 or h % 2 or w % 2:
        raise ValueError(f"S3D space-to-depth needs even T, H and W, got T={t}, H={h}, W={w}")
    video = video.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
    video = video.permute(0, 3, 5, 7, 1, 2, 4, 6)
    return video.reshape(b, 8 * c, t // 2, h // 2, w // 2)


class S3D(PretrainedModel):
    """S3D-G of MIL-NCE (video branch only).

    ``forward(video)`` returns :class:`S3DOutput`. ``stages(video)`` yields every module's
    output by its (original) name, for inspection and for features other than the pooled ones.
    """

    family = "s3d"
    config_class = S3DConfig

    def __init__(self, config: S3DConfig | None = None):
        config = config or S3DConfig()
        super().__init__(config)
        if config.space_to_depth:
            self.conv1 = STConv3d(24, 64, (2, 4, 4), stride=1, padding=(1, 2, 2))
        else:
            self.conv1 = STConv3d(3, 64, (3, 7, 7), stride=2, padding=(1, 3, 3))
        self.maxpool_2a = TFSamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        self.conv_2b = STConv3d(64, 64, (1, 1, 1))
        self.conv_2c = STConv3d(64, 192, (3, 3, 3), padding=1, separable=True)
        # The original always applies this gating (its `gating` flag is shadowed by this module).
        self.gating = SelfGating(192)
        self.maxpool_3a = TFSamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        self.maxpool_4a = TFSamePadMaxPool3d((3, 3, 3), (2, 2, 2))
        self.maxpool_5a = TFSamePadMaxPool3d((2, 2, 2), (2, 2, 2))
        for name, channels in INCEPTION_CHANNELS.items():
            self.add_module(name, InceptionBlock(*channels))
        self.fc = nn.Linear(MIXED_5C_DIM, config.embedding_dim)

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def stages(self, video: torch.Tensor):
        """Yield ``(module name, its output)`` for the stem and every later module, in order."""
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"S3D expects (B, 3, T, H, W) RGB clips, got shape {tuple(video.shape)}")
        video = video.to(next(self.parameters()).dtype)
        if self.config.space_to_depth:
            x = self.conv1(as_channels_last_3d(space_to_depth(video), self))
            yield "conv1", x
            # drop the first index in T, H, W: with padding (1, 2, 2) this imitates TF 'SAME'
            x = x[:, :, 1:, 1:, 1:]
        else:
            x = self.conv1(as_channels_last_3d(video, self))
            yield "conv1", x
        for name in STAGES:
            x = getattr(self, name)(x)
            yield name, x

    def forward(self, video: torch.Tensor) -> S3DOutput:
        runner = self.__dict__.get("_runner")
        embedding, pooled = runner(video) if runner is not None else self.embed(video)
        return S3DOutput(video_embedding=embedding.float(), mixed_5c=pooled.float())

    def embed(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(fc(mixed_5c), mixed_5c) in PyTorch: what ``forward`` returns, as a tuple."""
        for _, x in self.stages(video):
            pass
        pooled = x.mean(dim=(2, 3, 4))
        return self.fc(pooled), pooled

    def accelerate(self, runners) -> None:
        """Run the network through ``runners`` (:mod:`vtzoo.runtime`); batch, length and size may vary."""
        example = torch.zeros(1, 3, 16, 224, 224)
        # kept out of the module tree: the runner wraps this very network
        self.__dict__["_runner"] = runners("s3d", _S3DEmbed(self), (example,), {0: (0, 2, 3, 4)})

    def apply_precision(self, precision: str) -> None:
        """bf16: the whole network in bf16 and ``channels_last_3d`` (4x over float32 here; bf16
        without channels-last gains little); docs/operators/videoclip.md."""
        super().apply_precision(precision)
        prepare_3d_cnn(self, precision)


class _S3DEmbed(nn.Module):
    """``S3D.embed`` as a module of its own, for runtimes that convert a module's ``forward``."""

    def __init__(self, s3d: S3D):
        super().__init__()
        self.s3d = s3d

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.s3d.embed(video)
