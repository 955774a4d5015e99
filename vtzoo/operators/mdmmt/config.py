"""Configuration of the MDMMT / MMT family (one dataclass for both; ``architecture`` switches).

MDMMT (Dzabraev et al., CVPRW 2021) re-uses the multi-modal video transformer of MMT
(Gabeur et al., ECCV 2020). The two differ in a few places, all driven by this config:

============================  ==============================  ==================================
                              ``architecture="mdmmt"``         ``architecture="mmt"``
============================  ==============================  ==================================
expert projection             expert dim -> video hidden       expert dim -> ``same_dim``
[AGG] input                   max-pool of the padded tokens    max-pool of ALL raw features
padding / missing time value  0                                1
time re-basing                per expert, per video            none (times start at 2 s)
similarity                    plain dot product                per-pair renormalised weights,
                                                               ``keep_missing_modalities``
text input                    tokenizer output, padded to the  [CLS] .. [SEP] padded to
                              longest caption                  ``text_max_length``
============================  ==============================  ==================================

Defaults are the released MDMMT model (``mdmmt_3mod.pth``: VIDEO/CLIP/tf_vggish experts, 9-layer
video transformer, bert-base-cased text encoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("mdmmt", "mmt")


def _mdmmt_experts() -> list[dict[str, Any]]:
    # name, feature dim, token type id (the original's "idx"), max tokens per video
    return [
        {"name": "VIDEO", "dim": 2048, "idx": 1, "max_tok": 30},
        {"name": "CLIP", "dim": 512, "idx": 2, "max_tok": 30},
        {"name": "tf_vggish", "dim": 128, "idx": 3, "max_tok": 30},
    ]


def _bert_base_cased() -> dict[str, Any]:
    return {
        "vocab_size": 28996,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "hidden_dropout_prob": 0.2,
        "attention_probs_dropout_prob": 0.2,
    }


@dataclass
class MdmmtConfig:
    """Every hyper-parameter of an MDMMT or MMT model.

    ``experts`` is ordered: the order fixes the token layout of the video transformer and the
    layout of the concatenated embeddings. Each entry has ``name``, ``dim`` (raw feature size),
    ``idx`` (token type id of the expert) and ``max_tok`` (tokens kept per video).
    """

    architecture: str = "mdmmt"
    experts: list[dict[str, Any]] = field(default_factory=_mdmmt_experts)
    same_dim: int = 512
    # video transformer (BERT layers without word embeddings)
    hidden_size: int = 512
    num_hidden_layers: int = 9
    num_attention_heads: int = 8
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.2
    attention_probs_dropout_prob: float = 0.2
    max_position_embeddings: int = 32
    type_vocab_size: int = 19
    layer_norm_eps: float = 1e-12
    # text encoder: a transformers BertConfig's fields
    text_bert: dict[str, Any] = field(default_factory=_bert_base_cased)
    text_max_length: int = 30
    add_dot: bool = True
    # MMT only: False masks missing experts out of the similarity (True in every released config)
    keep_missing_modalities: bool = True

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"MdmmtConfig.architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if not self.experts:
            raise ValueError("MdmmtConfig.experts must name at least one expert")
        names = [e["name"] for e in self.experts]
        if len(set(names)) != len(names):
            raise ValueError(f"MdmmtConfig.experts has duplicate names: {names}")
        for expert in self.experts:
            missing = {"name", "dim", "idx", "max_tok"} - set(expert)
            if missing:
                raise ValueError(f"expert {expert.get('name')!r} lacks {sorted(missing)}")
            if not 0 <= int(expert["idx"]) < self.type_vocab_size:
                raise ValueError(f"expert {expert['name']!r}: idx {expert['idx']} outside [0, {self.type_vocab_size})")
        if self.architecture == "mmt" and self.same_dim != self.hidden_size:
            raise ValueError("MMT projects experts straight to same_dim: hidden_size must equal same_dim")

    @property
    def expert_names(self) -> list[str]:
        return [e["name"] for e in self.experts]

    def expert(self, name: str) -> dict[str, Any]:
        for e in self.experts:
            if e["name"] == name:
                return e
        raise KeyError(f"unknown expert {name!r} (this model has: {', '.join(self.expert_names)})")

    @property
    def embedding_dim(self) -> int:
        """Size of the retrieval vectors: one ``same_dim`` block per expert."""
        return self.same_dim * len(self.experts)

    @property
    def video_tokens(self) -> int:
        """Sequence length of the video transformer: [CLS] + per expert ([AGG] + max_tok)."""
        return 1 + sum(1 + int(e["max_tok"]) for e in self.experts)
