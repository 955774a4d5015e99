"""The visual vocabulary: k-means finds known clusters, the tree tokenises by descent, files round-trip."""

from __future__ import annotations

import pytest
import torch

from vtzoo.errors import InputError
from vtzoo.operators.videobert.visual_words import VisualVocabulary, VocabularyMismatch, fit_vocabulary, kmeans


def _blobs(centres: torch.Tensor, per: int, spread: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(centres)).repeat_interleave(per)
    return centres[labels] + spread * torch.randn(len(labels), centres.shape[1], generator=generator), labels


def test_kmeans_recovers_well_separated_clusters():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    points, labels = _blobs(centres, 50, 0.5)
    found = kmeans(points, 4, generator=torch.Generator().manual_seed(1))
    # every true centre has a found centroid within 0.3, and vice versa
    distance = torch.cdist(centres, found)
    assert distance.min(dim=1).values.max() < 0.3 and distance.min(dim=0).values.max() < 0.3
    assignment = torch.cdist(points, found).argmin(dim=1)
    for cluster in range(4):  # each blob lands in one cluster whole
        assert assignment[labels == cluster].unique().numel() == 1


def test_kmeans_with_fewer_points_than_clusters_repeats_points():
    points = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    found = kmeans(points, 3, generator=torch.Generator().manual_seed(0))
    assert found.shape == (3, 2)
    assert all(any(torch.equal(row, p) for p in points) for row in found)


def test_the_tree_tokenises_by_descent_to_the_right_leaf():
    # two top clusters far apart, each with two sub-clusters: leaf id = top * 2 + sub
    top = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    leaves = torch.tensor([[0.0, -5.0], [0.0, 5.0], [100.0, -5.0], [100.0, 5.0]])
    points, labels = _blobs(leaves, 30, 0.3)
    vocab = fit_vocabulary(points, branching=2, levels=2, seed=0)
    assert vocab.size == 4 and [c.shape[0] for c in vocab.centroids] == [2, 4]
    words = vocab.tokenize(points)
    for leaf in range(4):
        assert words[labels == leaf].unique().numel() == 1
    # the two leaves of one top cluster share the parent: word // 2
    assert words[labels == 0].unique() // 2 == words[labels == 1].unique() // 2
    assert words[labels == 0].unique() // 2 != words[labels == 2].unique() // 2
    assert top.shape == (2, 2)


def test_full_size_tree_has_20736_words():
    vocab = VisualVocabulary([torch.zeros(12 ** (i + 1), 8) for i in range(4)], branching=12)
    assert vocab.size == 20736


def test_save_load_and_extractor_mismatch(tmp_path):
    points, _ = _blobs(torch.eye(3) * 10, 10, 0.1)
    vocab = fit_vocabulary(points, branching=3, levels=1, extractor="s3d[a]/mixed_5c")
    loaded = VisualVocabulary.load(vocab.save(tmp_path / "vocab.safetensors"))
    assert loaded.extractor == "s3d[a]/mixed_5c" and torch.equal(loaded.tokenize(points), vocab.tokenize(points))
    with pytest.raises(VocabularyMismatch, match=r"s3d\[a\].*s3d\[b\]"):
        loaded.tokenize(points, extractor="s3d[b]/mixed_5c")
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        loaded.tokenize(torch.zeros(4, 5))
