"""VideoCLIP (Xu et al., EMNLP 2021): separate video and text BERT towers, mean-pooled, dot product.

Both towers are transformers ``BertModel`` s. The video tower does not read word ids: its
sequence is ``[CLS] v_1..v_T [SEP]`` where ``v_t`` is an MLP over the S3D feature of second t
and the two special tokens are word embeddings. Layout details reproduced from the original
(and easy to get wrong):

* video position ids are ``0..T`` then ``max_video_len + 1`` for the ``[SEP]``, whatever T is;
* token type ids are 0 in both towers;
* the video pooled vector is the mean over the valid seconds **and** the ``[SEP]`` (not ``[CLS]``);
  the text pooled vector is the mean over the words **and** the final ``[SEP]`` (not ``[CLS]``);
* the MLP is linear -> GELU -> LayerNorm(eps 1e-5) -> linear;
* scores are raw dot products of the pooled vectors (no normalisation, no temperature).

Captions come in the original's tensor layout ``[CLS] [SEP] w_1..w_n [SEP] [PAD]..`` (``caps``,
with ``cmasks`` True on the non-pad part): the text tower reads it without column 1, the video
tower takes its special tokens from columns 0 and 1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import BertConfig, BertModel
from transformers.activations import ACT2FN

from vtzoo.backbones.s3d import S3D, S3DConfig
from vtzoo.errors import InputError
from vtzoo.modeling import PretrainedModel
from vtzoo.operators.videoclip.config import VideoCLIPConfig
from vtzoo.precision import DTYPES, cast_matmul_weights


class VideoCLIPInputError(InputError):
    """Inputs VideoCLIP cannot read (wrong feature size, no valid step, ...)."""


class VideoTruncationWarning(UserWarning):
    """More video seconds than the model reads: the tail is dropped, as the original does."""


@dataclass
class TowerOutput:
    """One tower's result, with exactly what its BERT was fed (for inspection and parity)."""

    pooled: torch.Tensor  # (B, H)
    sequence: torch.Tensor  # (B, L, H): last hidden state
    pool_weights: torch.Tensor  # (B, L): the mean-pooling weights (sum to 1 per row)
    encoder_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings output, then every layer
    video_tokens: torch.Tensor | None = None  # (B, T, H): the MLP output (video tower only)

    def as_float(self) -> "TowerOutput":
        """The pooled and sequence outputs in float32 (a bf16 tower computes them in bf16)."""
        self.pooled, self.sequence = self.pooled.float(), self.sequence.float()
        return self


def bert_config(config: VideoCLIPConfig, num_hidden_layers: int) -> BertConfig:
    return BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id,
    )


class VideoTokenMLP(nn.Module):
    """S3D feature -> video token: linear -> activation -> LayerNorm -> linear (activation first)."""

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.linear1 = nn.Linear(config.video_input_dim, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.video_mlp_layer_norm_eps)
        self.linear2 = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.LayerNorm(self.activation(self.linear1(features))))


class VideoEncoder(nn.Module):
    """The video tower: MLP video tokens between ``[CLS]`` and ``[SEP]`` word embeddings, then BERT."""

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.config = config
        self.videomlp = VideoTokenMLP(config)
        self.bert = BertModel(bert_config(config, config.video_num_hidden_layers), add_pooling_layer=False)

    def position_ids(self, num_steps: int, device: torch.device) -> torch.Tensor:
        """``0..T`` for ``[CLS]`` and the video tokens, then ``max_video_len + 1`` for the ``[SEP]``."""
        positions = torch.arange(num_steps + 1, device=device)
        sep = torch.tensor([self.config.max_video_len + 1], device=device)
        return torch.cat([positions, sep]).unsqueeze(0)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, special_ids: torch.Tensor, special_mask: torch.Tensor
    ) -> TowerOutput:
        batch, steps = mask.shape
        tokens = self.videomlp(features)
        specials = self.bert.embeddings.word_embeddings(special_ids)  # (B, 2, H): [CLS], [SEP]
        embeds = torch.cat([specials[:, :1], tokens, specials[:, 1:]], dim=1)
        inputs = {
            "input_ids": special_ids,
            "attention_mask": torch.cat([special_mask[:, :1], mask, special_mask[:, 1:2]], dim=1).bool(),
            "token_type_ids": torch.zeros((batch, steps + 2), dtype=torch.long, device=mask.device),
            "position_ids": self.position_ids(steps, mask.device),
        }
        out = self.bert(
            inputs_embeds=embeds,
            attention_mask=inputs["attention_mask"].long(),
            token_type_ids=inputs["token_type_ids"],
            position_ids=inputs["position_ids"],
            output_hidden_states=True,
        )
        # mean over the valid video steps and the [SEP]; [CLS] excluded
        ones, zeros = mask.new_ones((batch, 1)), mask.new_zeros((batch, 1))
        weights = torch.cat([zeros, mask, ones], dim=1).to(out.last_hidden_state.dtype)
        weights = weights / weights.sum(dim=1, keepdim=True)
        pooled = torch.bmm(out.last_hidden_state.transpose(1, 2), weights.unsqueeze(2)).squeeze(-1)
        return TowerOutput(pooled, out.last_hidden_state, weights, inputs, out.hidden_states, tokens)


class VideoCLIPModel(PretrainedModel):
    """VideoCLIP retrieval model (MMPT's ``MMFusionSeparate``), plus the S3D that makes its inputs.

    * ``forward_video(features, mask)``: per-second S3D features ``(B, T, 512)`` -> :class:`TowerOutput`;
    * ``forward_text(caps, cmasks)``: caption tensors in the original layout -> :class:`TowerOutput`;
    * ``forward(caps, cmasks, features, mask)``: both pooled vectors (the original's call order);
    * ``similarity(text_pooled, video_pooled)``: raw dot products, (n_text, n_video);
    * ``s3d`` (when ``config.with_s3d``): the S3D backbone for raw video (see ``backbones.s3d.features``);
      ``s3d_trained`` is False when the loaded release had no S3D weights.
    """

    family = "videoclip"
    config_class = VideoCLIPConfig

    def __init__(self, config: VideoCLIPConfig):
        super().__init__(config)
        self.video_encoder = VideoEncoder(config)
        self.text_encoder = BertModel(bert_config(config, config.text_num_hidden_layers), add_pooling_layer=False)
        self.s3d = S3D(S3DConfig(embedding_dim=config.video_input_dim)) if config.with_s3d else None
        self.s3d_trained = True

    def init_like_original(self, loaded) -> None:
        """The MMPT checkpoint came without ``s3d_howto100m.pth``: the S3D keeps its (seeded)
        initialisation and is marked untrained, so raw video is refused instead of silently
        embedded with random features."""
        if self.s3d is not None and "s3d." in getattr(loaded, "initialised", ()):
            self.s3d_trained = False

    # -- precision (see docs/operators/videoclip.md) ---------------------------------------
    def apply_precision(self, precision: str) -> None:
        """bf16 weights in the BERT towers' Linear layers (norms and embeddings float32, pooled
        outputs float32); S3D takes its own policy (bf16 + channels_last_3d)."""
        super().apply_precision(precision)
        if precision != "fp32":
            cast_matmul_weights(self.video_encoder, DTYPES[precision])
            cast_matmul_weights(self.text_encoder, DTYPES[precision])
        if self.s3d is not None:
            self.s3d.apply_precision(precision)

    def accelerate(self, runners) -> None:
        if self.s3d is not None:
            self.s3d.accelerate(runners)

    # -- inputs -----------------------------------------------------------------------------
    def special_ids(self, batch: int, device: torch.device) -> torch.Tensor:
        """The ``[CLS] [SEP]`` pair the video tower reads (columns 0-1 of every caption tensor)."""
        ids = torch.tensor([[self.config.cls_token_id, self.config.sep_token_id]], device=device)
        return ids.expand(batch, 2)

    def check_video_features(
        self, features: torch.Tensor, mask: torch.Tensor | None, truncate: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``(B, T, D)`` features and ``(B, T)`` mask; cut to ``max_video_len`` steps when ``truncate``.

        Cutting warns when real (unmasked) seconds are dropped. The original's model does not
        cut (its aligner does, before); ``truncate=False`` reproduces the model alone.
        """
        dim = self.config.video_input_dim
        if features.dim() == 2:
            features = features.unsqueeze(0)
        if features.dim() != 3 or features.shape[-1] != dim:
            raise VideoCLIPInputError(
                f"VideoCLIP expects per-second S3D features of shape (B, T, {dim}), got {tuple(features.shape)}"
            )
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        if mask.dim() == 1:
            mask = mask.unsqueeze(0)
        if mask.shape != features.shape[:2]:
            raise VideoCLIPInputError(
                f"video mask {tuple(mask.shape)} does not match features {tuple(features.shape[:2])}"
            )
        # No valid second is allowed here, as in the original: the video then pools to its [SEP]
        # alone. The operator refuses empty videos before they get here.
        limit = self.config.max_video_len
        if truncate and features.shape[1] > limit:
            if bool(mask[:, limit:].bool().any()):
                warnings.warn(
                    f"VideoCLIP reads at most max_video_len={limit} seconds; the features after second "
                    f"{limit} are dropped (the original does the same)",
                    VideoTruncationWarning,
                    stacklevel=3,
                )
            features, mask = features[:, :limit], mask[:, :limit]
        return features, mask.bool()

    # -- towers -----------------------------------------------------------------------------
    def forward_video(
        self, features: torch.Tensor, mask: torch.Tensor | None = None, caps: torch.Tensor | None = None,
        cmasks: torch.Tensor | None = None, truncate: bool = True,
    ) -> TowerOutput:  # fmt: skip
        """Per-second features (B, T, D) + mask (B, T) -> video tower output.

        ``caps``/``cmasks`` (optional) supply the special tokens as the original does (columns 0-1);
        by default they are ``[CLS] [SEP]`` from the config, both attended. Steps beyond
        ``max_video_len`` are cut (with a warning) unless ``truncate=False``.
        """
        features, mask = self.check_video_features(features, mask, truncate)
        batch = features.shape[0]
        if caps is None:
            special_ids = self.special_ids(batch, features.device)
            special_mask = torch.ones((batch, 2), dtype=torch.bool, device=features.device)
        else:
            special_ids = caps[:, :2]
            special_mask = (cmasks if cmasks is not None else caps.ne(self.config.pad_token_id))[:, :2].bool()
        with self.mixed_precision():
            return self.video_encoder(features.float(), mask, special_ids, special_mask).as_float()

    def forward_text(self, caps: torch.Tensor, cmasks: torch.Tensor) -> TowerOutput:
        """Caption tensors ``[CLS] [SEP] words [SEP] [PAD]..`` (B, L) + masks -> text tower output."""
        if caps.dim() != 2 or caps.shape[1] < 3:
            raise VideoCLIPInputError(
                f"caption tensor must be (B, L >= 3) in [CLS] [SEP] words [SEP] layout, got {tuple(caps.shape)}"
            )
        cmasks = cmasks.bool()
        keep = [0, *range(2, caps.shape[1])]  # drop column 1, the video [SEP] slot
        inputs = {
            "input_ids": caps[:, keep],
            "attention_mask": cmasks[:, keep],
            "token_type_ids": torch.zeros_like(caps[:, keep]),
            "position_ids": torch.arange(len(keep), device=caps.device).unsqueeze(0),
        }
        with self.mixed_precision():
            out = self.text_encoder(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"].long(),
                token_type_ids=inputs["token_type_ids"],
                position_ids=inputs["position_ids"],
                output_hidden_states=True,
            )
        # mean over the words and the final [SEP]; [CLS] excluded
        weights = torch.cat([cmasks.new_zeros((caps.shape[0], 1)), cmasks[:, 2:]], dim=1)
        weights = weights.to(torch.float32)
        weights = weights / weights.sum(dim=1, keepdim=True)
        last = out.last_hidden_state.float()
        pooled = torch.bmm(last.transpose(1, 2), weights.unsqueeze(2)).squeeze(-1)
        return TowerOutput(pooled, last, weights, inputs, out.hidden_states)

    def forward(
        self, caps: torch.Tensor, cmasks: torch.Tensor, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The original's call: ``model(caps, cmasks, vfeats, vmasks)`` -> pooled text and video."""
        video = self.forward_video(features, mask, caps, cmasks)
        text = self.forward_text(caps, cmasks)
        return {"pooled_video": video.pooled, "pooled_text": text.pooled}

    @staticmethod
    def similarity(text_pooled: torch.Tensor, video_pooled: torch.Tensor) -> torch.Tensor:
        """Retrieval scores: raw dot products, rows = captions, columns = videos."""
        return text_pooled @ video_pooled.T
