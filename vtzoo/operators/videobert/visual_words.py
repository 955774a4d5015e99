"""VideoBERT's visual vocabulary: hierarchical k-means over S3D clip features.

The paper tokenises each 1.5 s clip by its nearest centroid in a tree of k-means clusterings:
``levels`` levels of ``branching`` clusters each (4 x 12 = 12^4 = 20,736 visual words). The tree is
fitted top-down (every node's points are clustered into ``branching`` children) and a feature is
tokenised by descending it greedily, level by level, to a leaf. The vocabulary is saved as
safetensors with the fingerprint of the feature extractor whose features it was fitted on, so
features of another extractor are refused instead of silently mapped to meaningless words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vtzoo.errors import InputError, VtzooError


class VocabularyMismatch(InputError):
    """A visual vocabulary used with features it was not fitted on."""


def kmeans(points: torch.Tensor, k: int, iterations: int = 25, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` centroids of ``points`` (N, D) by Lloyd's algorithm from a k-means++ start.

    With fewer distinct points than ``k`` the surplus centroids repeat points (a full tree keeps
    every word id meaningful: such a word is simply never the nearest). An emptied cluster is
    re-seeded at the point farthest from its centroid.
    """
    points = points.float()
    n = points.shape[0]
    if n == 0:
        raise InputError("k-means needs at least one point")
    centroids = points[torch.randint(n, (1,), generator=generator)]
    while centroids.shape[0] < k:  # k-means++: the next centre far from the chosen ones
        distance = torch.cdist(points, centroids).min(dim=1).values.pow(2)
        if float(distance.sum()) == 0.0:
            extra = points[torch.randint(n, (k - centroids.shape[0],), generator=generator)]
            centroids = torch.cat([centroids, extra])
            break
        centroids = torch.cat([centroids, points[torch.multinomial(distance, 1, generator=generator)]])
    for _ in range(iterations):
        assignment = torch.cdist(points, centroids).argmin(dim=1)
        updated = centroids.clone()
        for cluster in range(k):
            members = points[assignment == cluster]
            if members.shape[0]:
                updated[cluster] = members.mean(dim=0)
            else:
                far = torch.cdist(points, centroids[cluster : cluster + 1]).squeeze(1).argmax()
                updated[cluster] = points[far]
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids


@dataclass
class VisualVocabulary:
    """A k-means tree. ``centroids[l]`` is (branching^(l+1), D): the children of node ``i`` of level
    ``l - 1`` are rows ``i * branching ... i * branching + branching - 1`` of level ``l``."""

    centroids: list[torch.Tensor]
    branching: int
    extractor: str = ""

    @property
    def levels(self) -> int:
        return len(self.centroids)

    @property
    def size(self) -> int:
        return self.branching**self.levels

    @property
    def dim(self) -> int:
        return self.centroids[0].shape[1]

    def tokenize(self, features: torch.Tensor, extractor: str | None = None) -> torch.Tensor:
        """(N, D) clip features -> (N,) visual word ids in ``[0, size)``, by greedy descent."""
        if extractor is not None and self.extractor and extractor != self.extractor:
            raise VocabularyMismatch(
                f"this visual vocabulary was fitted on features of {self.extractor!r}, not {extractor!r}: "
                "fit one on this extractor's features (vtzoo videobert-vocab)"
            )
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise InputError(f"visual features must be (N, {self.dim}), got {tuple(features.shape)}")
        features = features.float()
        node = torch.zeros(features.shape[0], dtype=torch.long)
        for level in self.centroids:
            children = level.view(-1, self.branching, self.dim)[node]  # (N, branching, D)
            nearest = (children - features[:, None]).pow(2).sum(-1).argmin(dim=1)
            node = node * self.branching + nearest
        return node

    def leaf_centroids(self) -> torch.Tensor:
        return self.centroids[-1]

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        tensors = {f"level_{i}": c.contiguous() for i, c in enumerate(self.centroids)}
        meta = {"vtzoo_visual_vocabulary": json.dumps({"branching": self.branching, "extractor": self.extractor})}
        save_file(tensors, str(path), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "VisualVocabulary":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = (handle.metadata() or {}).get("vtzoo_visual_vocabulary")
            if meta is None:
                raise VtzooError(f"{path}: not a visual vocabulary (no vtzoo_visual_vocabulary metadata)")
            info = json.loads(meta)
            levels = sorted(handle.keys(), key=lambda k: int(k.split("_")[1]))
            centroids = [handle.get_tensor(k) for k in levels]
        return cls(centroids=centroids, branching=int(info["branching"]), extractor=info.get("extractor", ""))


def fit_vocabulary(features: torch.Tensor, branching: int = 12, levels: int = 4, iterations: int = 25,
                   seed: int = 0, extractor: str = "") -> VisualVocabulary:
    """Fit the tree top-down on ``features`` (N, D): every node's points are split into
    ``branching`` clusters, ``levels`` times."""
    if features.dim() != 2 or features.shape[0] == 0:
        raise InputError(f"fit_vocabulary needs features (N, D) with N > 0, got {tuple(features.shape)}")
    generator = torch.Generator().manual_seed(seed)
    features = features.float()
    members = [torch.arange(features.shape[0])]  # the points of each node of the current level
    centroids: list[torch.Tensor] = []
    for _ in range(levels):
        level, children = [], []
        for node_points in members:
            points = features[node_points] if node_points.numel() else features.mean(0, keepdim=True)
            centres = kmeans(points, branching, iterations, generator)
            level.append(centres)
            assignment = torch.cdist(points, centres).argmin(dim=1) if node_points.numel() else None
            for child in range(branching):
                children.append(node_points[assignment == child] if assignment is not None else node_points)
        centroids.append(torch.cat(level))
        members = children
    return VisualVocabulary(centroids=centroids, branching=branching, extractor=extractor)


def fit_on_videos(clips, videos: list, branching: int = 12, levels: int = 4, seed: int = 0,
                  progress: bool = True) -> tuple[VisualVocabulary, dict[str, str]]:
    """Fit a vocabulary on the clip features of ``videos`` (``clips``: an
    :class:`~vtzoo.backbones.s3d.clips.S3DClips`); returns it and the videos that failed (path -> reason)."""
    from tqdm import tqdm

    features, failures = [], {}
    for video in tqdm(videos, desc="clip features", unit="video", disable=not progress):
        try:
            features.append(clips(video, str(video))[0])
        except VtzooError as exc:
            failures[str(video)] = str(exc)
    if not features:
        raise InputError("no video gave clip features to fit a visual vocabulary on")
    return fit_vocabulary(torch.cat(features), branching, levels, seed=seed, extractor=clips.extractor_id), failures
