"""VGGish (Hershey et al. 2017): the audio expert of MDMMT (``tf_vggish``) and MMT (``vggish``).

A VGG-style conv stack over (N, 1, 96, 64) log-mel examples, then three fully connected layers
to a 128-d embedding. MDMMT applies ReLU to TensorFlow's pre-activation ``vggish/embedding``,
which is what the PyTorch port's final ReLU gives. The optional postprocessor applies the
AudioSet PCA (with whitening), clips to [-2, 2] and quantises to 0..255 (as floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from vtzoo.modeling import PretrainedModel

QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0


@dataclass
class VggishConfig:
    """The released VGGish has one architecture (the defaults); ``conv_channels`` (of its four
    conv stages) and ``hidden_size`` (of its two hidden fully connected layers) only shrink it for
    tests. ``postprocess`` adds the PCA + quantisation step."""

    embedding_size: int = 128
    postprocess: bool = False
    final_relu: bool = True
    conv_channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    hidden_size: int = 4096

    @classmethod
    def from_original(cls, original: Mapping[str, Any], **overrides: Any) -> "VggishConfig":
        """torchvggish's ``VGGish(..., postprocess=...)`` constructor arguments (its ``kwargs``)."""
        return cls(postprocess=bool(original.get("postprocess", False)), **overrides)


class VggishModel(PretrainedModel):
    """VGGish network with torchvggish's module names (``features.N``, ``embeddings.N``, ``pproc``)."""

    family = "vggish"
    config_class = VggishConfig

    def __init__(self, config: VggishConfig):
        super().__init__(config)
        c1, c2, c3, c4 = config.conv_channels
        layers: list[nn.Module] = []
        channels = 1
        for item in (c1, "M", c2, "M", c3, c3, "M", c4, c4, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        hidden = config.hidden_size
        self.embeddings = nn.Sequential(
            nn.Linear(c4 * 6 * 4, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, config.embedding_size),
        )
        self.pproc = VggishPostprocessor(config.embedding_size)

    def conv_features(self, examples: torch.Tensor) -> torch.Tensor:
        """(N, 1, 96, 64) -> (N, 512, 6, 4)."""
        return self.features(examples)

    def embed_pre_activation(self, conv: torch.Tensor) -> torch.Tensor:
        """(N, 512, 6, 4) -> (N, 128) before the final ReLU (TensorFlow's ``vggish/embedding``)."""
        # flatten in TensorFlow's NHWC order (time, band, channel): the fc weights expect it
        flat = conv.permute(0, 2, 3, 1).reshape(conv.shape[0], -1)
        return self.embeddings(flat)

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """(N, 1, 96, 64) log-mel examples -> (N, 128) embeddings (ReLU'd; PCA'd if configured)."""
        x = self.embed_pre_activation(self.conv_features(examples))
        if self.config.final_relu:
            x = torch.relu(x)
        if self.config.postprocess:
            x = self.pproc(x)
        return x


class VggishPostprocessor(nn.Module):
    """AudioSet PCA + whitening, clipping to [-2, 2] and 8-bit quantisation (returned as floats)."""

    def __init__(self, size: int = 128):
        super().__init__()
        self.register_buffer("pca_eigen_vectors", torch.eye(size))
        self.register_buffer("pca_means", torch.zeros(size, 1))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, 128) -> (N, 128). Unlike the reference port, one row stays (1, 128) (no squeeze)."""
        pca = torch.mm(self.pca_eigen_vectors, embeddings.T - self.pca_means).T
        clipped = torch.clamp(pca, QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))
