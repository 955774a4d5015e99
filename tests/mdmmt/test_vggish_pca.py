"""The released VGGish PCA file loads through the card.

torchvggish publishes ``vggish_pca_params-970ea276.pth``: ``torch.save`` of a dict of two numpy
float64 arrays, ``pca_eigen_vectors`` (128, 128) and ``pca_means`` (128,), written in 2019 (the
legacy, non-zip format, with numpy 1's ``numpy.core.multiarray`` names). Files of that layout are
written here (the release cannot be downloaded), in the legacy format with numpy 1's names and in
today's zip format, and read with the safe unpickler only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vtzoo

VGG_SHAPES = {
    "features.0": (64, 1, 3, 3), "features.3": (128, 64, 3, 3), "features.6": (256, 128, 3, 3),
    "features.8": (256, 256, 3, 3), "features.11": (512, 256, 3, 3), "features.13": (512, 512, 3, 3),
    "embeddings.0": (4096, 12288), "embeddings.2": (4096, 4096), "embeddings.4": (128, 4096),
}


def write_vgg_release(path) -> None:
    """``vggish-10086976.pth``'s keys and shapes; each tensor a broadcast view of one small
    random row, so the 72M-parameter file stays a few kilobytes."""
    rng = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in VGG_SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        row = (torch.rand(shape[1:], generator=rng) - 0.5) * 2 / fan_in**0.5
        state[f"{name}.weight"] = row.unsqueeze(0).expand(shape)
        state[f"{name}.bias"] = torch.full((1,), 0.01).expand(shape[0])
    torch.save(state, path)


def write_pca_release(path, numpy1_names: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {"pca_eigen_vectors": np.linalg.qr(rng.standard_normal((128, 128)))[0], "pca_means": rng.standard_normal(128)}
    if numpy1_names:  # as the 2019 release: legacy format, numpy.core.multiarray._reconstruct
        torch.save(arrays, path, _use_new_zipfile_serialization=False)
        data = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        path.write_bytes(data)
    else:
        torch.save(arrays, path)
    return arrays


@pytest.mark.parametrize("numpy1_names", [True, False], ids=["legacy-numpy1", "zip"])
def test_the_pca_release_loads_through_the_card(tmp_path, numpy1_names):
    write_vgg_release(tmp_path / "vggish-10086976.pth")
    arrays = write_pca_release(tmp_path / "vggish_pca_params-970ea276.pth", numpy1_names)
    op = vtzoo.create("vggish/audioset", weights=str(tmp_path), postprocess=True)
    model = op.model
    assert torch.equal(model.pproc.pca_eigen_vectors, torch.from_numpy(arrays["pca_eigen_vectors"]).float())
    assert torch.equal(model.pproc.pca_means, torch.from_numpy(arrays["pca_means"]).float().reshape(128, 1))

    examples = torch.randn(3, 1, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        embedding = torch.relu(model.embed_pre_activation(model.conv_features(examples))).double().numpy()
        postprocessed = model(examples).double().numpy()
    # torchvggish's Postprocessor, in numpy: PCA with whitening, clip to [-2, 2], 8-bit levels
    pca = (arrays["pca_eigen_vectors"].astype(np.float32) @ (embedding.T - arrays["pca_means"].astype(np.float32)[:, None])).T
    expected = np.round((np.clip(pca, -2.0, 2.0) + 2.0) * (255.0 / 4.0))
    assert np.abs(postprocessed - expected).max() <= 1.0  # float32 rounding may move a value across .5
    assert (postprocessed == expected).mean() > 0.99
