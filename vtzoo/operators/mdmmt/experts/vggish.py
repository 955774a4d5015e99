"""VGGish (Hershey et al. 2017): the audio expert of MDMMT (``tf_vggish``) and MMT (``vggish``).

A VGG-style conv stack over (N, 1, 96, 64) log-mel examples, then three fully connected layers
to a 128-d embedding. MDMMT applies ReLU to TensorFlow's pre-activation ``vggish/embedding``,
which is what the PyTorch port's final ReLU gives. The optional postprocessor applies the
AudioSet PCA (with whitening), clips to [-2, 2] and quantises to 0..255 (as floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from vtzoo.modeling import PretrainedModel

_CONV_PLAN = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0


@dataclass
class VggishConfig:
    """VGGish has one fixed architecture; ``postprocess`` adds the PCA + quantisation step."""

    embedding_size: int = 128
    postprocess: bool = False
    final_relu: bool = True


class VggishModel(PretrainedModel):
    """VGGish network with torchvggish's module names (``features.N``, ``embeddings.N``, ``pproc``)."""

    family = "vggish"
    config_class = VggishConfig

    def __init__(self, config: VggishConfig):
        super().__init__(config)
        layers: list[nn.Module] = []
        channels = 1
        for item in _CONV_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(),
            nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, config.embedding_size),
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


def convert_torchvggish_state_dict(state_dict: Mapping[str, torch.Tensor], config: VggishConfig) -> dict[str, torch.Tensor]:
    """torchvggish ``vggish-10086976.pth`` (+ optionally the PCA params) -> vtzoo keys.

    The VGG keys are identical. PCA params come as ``pca_eigen_vectors``/``pca_means`` (the
    release file), ``pproc.pca_eigen_vectors``/``pproc.pca_means`` or the older
    ``pproc.pca_matrix`` name; means are reshaped to a (128, 1) column. Without PCA params the
    postprocessor keeps an identity transform (and only matters when ``postprocess`` is on).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = key.removeprefix("pproc.")
        if name in ("pca_eigen_vectors", "pca_matrix"):
            out["pproc.pca_eigen_vectors"] = torch.as_tensor(value, dtype=torch.float32)
        elif name == "pca_means":
            out["pproc.pca_means"] = torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1)
        else:
            out[key] = value
    if "pproc.pca_eigen_vectors" not in out:
        if config.postprocess:
            raise ValueError("VGGish postprocess=True needs the PCA parameters (pca_eigen_vectors, pca_means)")
        out["pproc.pca_eigen_vectors"] = torch.eye(config.embedding_size)
        out["pproc.pca_means"] = torch.zeros(config.embedding_size, 1)
    return out


VggishModel.converters = {"original": convert_torchvggish_state_dict}
