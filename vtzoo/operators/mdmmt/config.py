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
from typing import Any, Mapping

from vtzoo.errors import ConfigError

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

    @classmethod
    def from_original(cls, original: Mapping[str, Any], **overrides: Any) -> "MdmmtConfig":
        """The config of an original model from its constructor arguments.

        MDMMT (papermsucode/mdmmt ``test.py``): ``BertVID`` (``expert_dims``, ``same_dim``,
        ``vid_bert_params``) and ``BertTXT`` (``modalities``, ``max_length``, ``add_dot``,
        ``txt_bert_params``) with ``text_bert_config`` (the text BERT's config). MMT (gabeur/mmt):
        ``CENet`` (``expert_dims``, ``same_dim``, ``vid_bert_params``, ``txt_bert_params`` and the
        options of the released configuration) with ``dataset`` (``max_text_words``,
        ``max_expert_tokens``) and ``text_bert_config``. ``overrides`` (vtzoo fields) go last.
        """
        if "CENet" in original:
            values = _from_mmt(original)
        elif "BertVID" in original and "BertTXT" in original:
            values = _from_mdmmt(original)
        else:
            raise ConfigError("MDMMT/MMT: the original config has neither BertVID/BertTXT (MDMMT) nor CENet (MMT)")
        return cls(**{**values, **overrides})


# the original vid_bert_params that shape the forward (vocab size / init range do not)
_VIDEO_BERT_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
)  # fmt: skip
# MMT options vtzoo ports: the values of every released configuration
_MMT_RELEASED = {"vid_cont": "bert", "txt_agg": "bertftn", "txt_pro": "gbn", "txt_wgh": "emb", "vid_wgh": "none",
                 "pos_enc": "tint", "out_tok": "mxp", "vid_inp": "both"}  # fmt: skip


def _video_bert(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in _VIDEO_BERT_FIELDS if k in params}


def _text_bert(original: Mapping[str, Any], dropouts: Mapping[str, Any] | None) -> dict[str, Any]:
    text = {k: v for k, v in original["text_bert_config"].items() if k != "attn_implementation"}
    return {**text, **(dropouts or {})}


def _from_mdmmt(original: Mapping[str, Any]) -> dict[str, Any]:
    vid, txt = original["BertVID"], original["BertTXT"]
    experts = [{"name": n, "dim": e["dim"], "idx": e["idx"], "max_tok": e["max_tok"]} for n, e in vid["expert_dims"].items()]
    if list(txt["modalities"]) != [e["name"] for e in experts]:
        raise ConfigError("MDMMT: BertTXT.modalities differ from BertVID.expert_dims order; vtzoo ties them together")
    return dict(architecture="mdmmt", experts=experts, same_dim=vid["same_dim"], **_video_bert(vid["vid_bert_params"]),
                text_bert=_text_bert(original, txt.get("txt_bert_params")), text_max_length=txt.get("max_length", 30),
                add_dot=txt.get("add_dot", True))  # fmt: skip


def _from_mmt(original: Mapping[str, Any]) -> dict[str, Any]:
    net, data = original["CENet"], original.get("dataset", {})
    unsupported = {k: net.get(k) for k, v in _MMT_RELEASED.items() if net.get(k, v) != v}
    if unsupported:
        raise ConfigError(f"MMT options outside the released configuration are not ported: {unsupported}")
    max_tok = int(data.get("max_expert_tokens", 30))
    experts = [{"name": n, "dim": e["dim"], "idx": e["idx"], "max_tok": max_tok} for n, e in net["expert_dims"].items()]
    return dict(architecture="mmt", experts=experts, same_dim=net["same_dim"], **_video_bert(net["vid_bert_params"]),
                text_bert=_text_bert(original, net.get("txt_bert_params")),
                text_max_length=int(data.get("max_text_words", 30)), keep_missing_modalities=True)  # fmt: skip

