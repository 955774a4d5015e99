"""VideoCLIP hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass


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
