"""irCSN-152 (Tran et al. 2019, "Video Classification with Channel-Separated Networks").

MDMMT's motion expert (``VIDEO``): the IG-65M checkpoint's pooled 2048-d feature per 32-frame
clip (the fc head is dropped). A 3D ResNet-152 bottleneck layout where the 3x3x3 conv of every
block is depthwise ("interaction-reduced"); module names follow torchvision's VideoResNet as
VMZ's checkpoints do (``stem.0``, ``layerL.B.conv2.0``, ...). Every BatchNorm has eps 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from vtzoo.modeling import PretrainedModel
from vtzoo.precision import as_channels_last_3d, prepare_3d_cnn

# Kinetics normalisation used by VMZ (and MDMMT's dumper) on [0, 1] RGB, layout (B, C, T, H, W)
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)


@dataclass
class IrCsnConfig:
    """``layers`` per stage ([3, 8, 36, 3] = irCSN-152); ``num_classes`` 0 drops the fc head."""

    layers: list[int] = field(default_factory=lambda: [3, 8, 36, 3])
    num_classes: int = 400
    bn_eps: float = 1e-3

    @classmethod
    def from_original(cls, original: Mapping[str, Any], **overrides: Any) -> "IrCsnConfig":
        """VMZ's ``ir_csn_152`` construction: ``blocks`` per stage and ``num_classes``."""
        return cls(layers=list(original.get("blocks", [3, 8, 36, 3])), num_classes=int(original.get("num_classes", 400)),
                   **overrides)  # fmt: skip


def _bn(channels: int, eps: float) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=eps)


class Bottleneck(nn.Module):
    """1x1x1 reduce -> depthwise 3x3x3 (stride s in T, H, W) -> 1x1x1 expand (x4), residual."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, eps: float):
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Sequential(nn.Conv3d(in_ch, planes, 1, bias=False), _bn(planes, eps), nn.ReLU())
        self.conv2 = nn.Sequential(
            nn.Conv3d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False),
            _bn(planes, eps),
            nn.ReLU(),
        )
        self.conv3 = nn.Sequential(nn.Conv3d(planes, out_ch, 1, bias=False), _bn(out_ch, eps))
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), _bn(out_ch, eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv3(self.conv2(self.conv1(x))) + residual)


class IrCsnModel(PretrainedModel):
    """irCSN backbone; ``features`` gives MDMMT's VIDEO expert vector, ``forward`` the logits."""

    family = "ircsn152"
    config_class = IrCsnConfig

    def __init__(self, config: IrCsnConfig):
        super().__init__(config)
        eps = config.bn_eps
        self.stem = nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            _bn(64, eps),
            nn.ReLU(),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        in_ch = 64
        for index, (blocks, planes) in enumerate(zip(config.layers, (64, 128, 256, 512)), start=1):
            stride = 1 if index == 1 else 2
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(in_ch, planes, stride if b == 0 else 1, eps))
                in_ch = planes * Bottleneck.expansion
            setattr(self, f"layer{index}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_ch, config.num_classes) if config.num_classes else None

    def stages(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Output of every stage for a (B, 3, T, H, W) normalised clip."""
        out = {"stem": self.stem(as_channels_last_3d(video, self))}
        x = out["stem"]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            out[name] = x
        return out

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 2048) average-pooled feature (before the fc)."""
        return torch.flatten(self.avgpool(self.stages(video)["layer4"]), 1).float()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        feats = self.features(video)
        return feats if self.fc is None else self.fc(feats.to(self.fc.weight.dtype)).float()

    def apply_precision(self, precision: str) -> None:
        """bf16: the whole network in bf16 and ``channels_last_3d`` (docs/operators/mdmmt.md)."""
        super().apply_precision(precision)
        prepare_3d_cnn(self, precision)
