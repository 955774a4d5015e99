"""torchvggish's release (``vggish-10086976.pth``, optionally its PCA parameters) -> vtzoo keys."""

from __future__ import annotations

from typing import Any, Mapping

import torch


def convert_torchvggish_state_dict(state_dict: Mapping[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
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


CONVERTERS = {"original": convert_torchvggish_state_dict}
