"""VideoBERT hyper-parameters (Sun et al., ICCV 2019, arXiv 1904.01766).

Defaults are the paper's: BERT-LARGE (24 layers, 1024 wide, 16 heads), the WordPiece text
vocabulary of BERT (30,522) extended by 12^4 = 20,736 visual words and the ``[>]`` token that joins
text and video; visual words come from S3D clip features (1024-d, 30-frame clips at 20 fps).
What the paper leaves open is marked "chosen" (docs/operators/videobert.md lists each value with
its source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VideoBertConfig:
    # the transformer: BERT-LARGE [paper]
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    # vocabularies
    text_vocab_size: int = 30522  # BERT's WordPiece vocabulary [paper]
    branching: int = 12  # visual words: hierarchical k-means, branching ** levels leaves [paper]
    levels: int = 4
    feature_dim: int = 1024  # S3D mixed_5c, average-pooled [paper]
    # how raw video becomes clip features (vtzoo.backbones.clip_features): empty = the paper's S3D
    # clips; a trained model names the extraction it was trained on (e.g. thumbnails)
    clip_features: dict[str, Any] = field(default_factory=dict)
    # input lengths (chosen: the paper gives no limits)
    max_text_tokens: int = 64
    max_video_tokens: int = 64
    # the feature extractor the installed visual vocabulary was fitted on (set when one is installed)
    vocabulary_extractor: str = ""
    # what `classify` chooses from when no verbs/nouns are passed (zero-shot, so any words will do)
    verbs: tuple[str, ...] = field(default_factory=tuple)
    nouns: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.max_text_tokens + self.max_video_tokens + 3 > self.max_position_embeddings:
            raise ValueError("max_text_tokens + max_video_tokens + 3 special tokens exceed max_position_embeddings")

    @property
    def visual_vocab_size(self) -> int:
        return self.branching**self.levels

    @property
    def visual_offset(self) -> int:
        """Id of visual word 0 in the joint vocabulary (text words come first)."""
        return self.text_vocab_size

    @property
    def join_token_id(self) -> int:
        """``[>]``, the token between the text and the video."""
        return self.text_vocab_size + self.visual_vocab_size

    @property
    def vocab_size(self) -> int:
        return self.join_token_id + 1
