"""VideoCLIP hyper-parameters, and the one mapping from the original's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vtzoo.errors import ConfigError

# the MMPT classes VideoCLIP is made of (other MMPT models are not ported)
SUPPORTED = {
    "model_cls": "MMFusionSeparate",
    "video_encoder_cls": "MMBertForEncoder",
    "text_encoder_cls": "BertModel",
    "mm_encoder_cls": None,
}
_BERT_FIELDS = (
    "vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act", "max_position_embeddings",
    "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "pad_token_id",
)  # fmt: skip


@dataclass
class VideoCLIPConfig:
    """Every VideoCLIP hyper-parameter; defaults = the released model (MMPT ``projects/retri/videoclip``).

    Two BERT-family towers share the BERT sizes (bert-base-uncased); the video tower keeps
    ``video_num_hidden_layers`` of them and reads S3D features through a two-layer MLP.
    """

    # BERT sizes (bert-base-uncased), shared by both towers
    vocab_size: int = 30522
    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    text_num_hidden_layers: int = 12
    video_num_hidden_layers: int = 6
    # video tokens: one S3D feature per second, through linear -> GELU -> LayerNorm -> linear
    video_input_dim: int = 512
    video_mlp_layer_norm_eps: float = 1e-5  # torch's default, not BERT's 1e-12 (as in the original)
    # sequence layout: [CLS] v_1..v_T [SEP] for video, [CLS] w_1..w_n [SEP] for text
    max_video_len: int = 32  # seconds of video the model reads (the video [SEP] sits at position max_video_len + 1)
    max_len: int = 96  # video + text budget of the original aligner: text gets max_len - max_video_len tokens
    cls_token_id: int = 101
    sep_token_id: int = 102
    # raw-video path: an S3D feature extractor inside the model (its weights load with VideoCLIP's);
    # how videos become per-second features is preprocessing (the card's, see S3DWindowing)
    with_s3d: bool = True

    @property
    def max_text_tokens(self) -> int:
        """Word pieces kept per caption: the caption tensor holds [CLS] [SEP] words [SEP]."""
        return self.max_len - self.max_video_len - 3

    @classmethod
    def from_original(cls, original: Mapping[str, Any], **overrides: Any) -> "VideoCLIPConfig":
        """The config of an original VideoCLIP: MMPT's yaml blocks and the BERT config it names.

        ``original`` holds ``mmpt_config`` (the yaml's ``model`` and ``dataset`` blocks:
        ``num_hidden_video_layers``, ``max_video_len``, ``max_len``), ``bert_config`` (the
        ``BertConfig`` of ``dataset.bert_name``), and optionally ``text_encoder_num_hidden_layers``
        / ``video_encoder_num_hidden_layers``, ``video_input_dim`` and ``special_token_ids``
        (``cls``, ``sep``). The original model reads precomputed features, so ``with_s3d`` is
        False unless ``overrides`` (vtzoo fields set last) say otherwise.
        """
        mmpt = original.get("mmpt_config", {})
        model, dataset = mmpt.get("model", {}), mmpt.get("dataset", {})
        for key, expected in SUPPORTED.items():
            if key in model and model[key] != expected:
                raise ConfigError(f"VideoCLIP: {key}={model[key]!r} is not supported (VideoCLIP is {expected!r})")
        bert = original.get("bert_config")
        if not isinstance(bert, Mapping):
            raise ConfigError("VideoCLIP: the original config has no 'bert_config' block (the BertConfig of bert_name)")
        special = original.get("special_token_ids", {})
        values: dict[str, Any] = {k: bert[k] for k in _BERT_FIELDS if k in bert}
        values.update(
            text_num_hidden_layers=int(original.get("text_encoder_num_hidden_layers", bert.get("num_hidden_layers", 12))),
            video_num_hidden_layers=int(
                original.get("video_encoder_num_hidden_layers", model.get("num_hidden_video_layers", 6))
            ),
            video_input_dim=int(original.get("video_input_dim", 512)),
            max_video_len=int(dataset.get("max_video_len", 32)),
            max_len=int(dataset.get("max_len", 96)),
            cls_token_id=int(special.get("cls", 101)),
            sep_token_id=int(special.get("sep", 102)),
            with_s3d=False,
        )
        values.update(overrides)
        return cls(**values)
