"""CBT hyper-parameters (Sun et al. 2019, "Learning Video Representations using Contrastive
Bidirectional Transformer", arXiv 1906.05743).

What the paper fixes: a visual transformer over frozen S3D clip features trained with a
contrastive (NCE) masked loss, a BERT text model, a cross-modal transformer whose MLP output
estimates mutual information, and the weighted sum of the three losses. Layer counts, widths,
sequence lengths and the mask ratio are not pinned by the sources available here: the values
below are chosen (docs/operators/cbt.md says which is which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CbtConfig:
    # visual transformer over S3D clip features (chosen sizes)
    feature_dim: int = 1024  # S3D mixed_5c, average-pooled
    # how raw video becomes clip features (vtzoo.backbones.clip_features): empty = S3D clips as
    # VideoBERT's; a trained model names the extraction it was trained on (e.g. thumbnails)
    clip_features: dict[str, Any] = field(default_factory=dict)
    hidden_size: int = 768
    visual_layers: int = 2
    visual_heads: int = 12
    intermediate_size: int = 3072
    max_clips: int = 64
    dropout: float = 0.1
    # text model: BERT-base, initialised from text BERT [paper: "BERT initialised from text BERT"]
    text_vocab_size: int = 30522
    text_hidden_size: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate_size: int = 3072
    max_text_tokens: int = 64
    # cross-modal transformer and its MI estimator (chosen sizes)
    cross_layers: int = 1
    cross_heads: int = 12
    # training: mask ratio (chosen: BERT's) and the weights of the three losses (chosen: equal)
    mask_probability: float = 0.15
    bert_weight: float = 1.0
    visual_weight: float = 1.0
    cross_weight: float = 1.0
    # linear probe (classify): trained by `vtzoo train --op cbt --recipe linear-probe`
    labels: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for width, heads, what in ((self.hidden_size, self.visual_heads, "visual"), (self.text_hidden_size, self.text_heads, "text"),
                                   (self.hidden_size, self.cross_heads, "cross")):
            if width % heads:
                raise ValueError(f"{what} width {width} is not a multiple of its {heads} heads")
        self.labels = tuple(self.labels)
