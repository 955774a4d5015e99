"""DRL: CLIP towers + temporal aggregation + token-level text-video interaction.

Module names follow the original (``clip``, ``frame_position_embeddings``, ``transformerClip``,
``lstm_visual``, ``text_weight_fc``, ``video_weight_fc``, ``cross``, ``similarity_dense``) so the
checkpoint mapping stays a rename of the CLIP and attention-block internals only.
"""

from __future__ import annotations

import torch
from torch import nn

from vtzoo.backbones.clip import CLIPTowers
from vtzoo.backbones.cross import (
    CrossEncoder,
    TemporalTransformer,
    init_weights_like_original,
    seq_lstm,
    seq_transformer,
    start_from_clip_text,
)
from vtzoo.modeling import PretrainedModel, StateDict
from vtzoo.operators.drl import interaction as I
from vtzoo.operators.drl.config import DRLConfig
from vtzoo.precision import full_precision

# the modules beside CLIP, as the original names them
HEAD_MODULES = ("frame_position_embeddings", "transformerClip", "lstm_visual", "text_weight_fc", "video_weight_fc",
                "cross", "similarity_dense")


class DRLModel(PretrainedModel):
    """Text tokens and (temporally aggregated) frame features from CLIP, scored token-wise.

    Typical use: ``text = model.encode_text(ids, mask)``, ``video = model.encode_video(pixels,
    video_mask)``, ``model.interact(text, video, mask, video_mask).t2v`` (evaluation logits) or
    ``model.loss(...)`` for fine-tuning.
    """

    family = "drl"
    config_class = DRLConfig

    def __init__(self, config: DRLConfig):
        super().__init__(config)
        sizes = config.clip
        width = sizes.transformer_width
        self.clip = CLIPTowers(sizes)
        if config.agg_module in ("seqTransf", "seqLSTM"):
            # also created (and unused) for seqLSTM, as in the original
            self.frame_position_embeddings = nn.Embedding(sizes.context_length, width)
        if config.agg_module == "seqTransf":
            self.transformerClip = TemporalTransformer(width, config.temporal_layers, sizes.transformer_heads)
        elif config.agg_module == "seqLSTM":
            self.lstm_visual = nn.LSTM(width, width, batch_first=True, bidirectional=False, num_layers=1)
        if config.interaction == "wti":
            self.text_weight_fc = I.build_weight_network(width, config.wti_arch)
            self.video_weight_fc = I.build_weight_network(width, config.wti_arch)
        elif config.interaction == "xti":
            self.cross = CrossEncoder(width, config.cross_layers, config.cross_heads, sizes.context_length)
            self.similarity_dense = nn.Linear(width, 1)

    def init_like_original(self, loaded: StateDict) -> None:
        """The heads as the original starts fine-tuning from CLIP (the model holds CLIP already):
        its ``init_weights``, then its "initialization trick": ``frame_position_embeddings`` (and
        xti's cross-encoder positions) <- CLIP's text position embedding, the temporal transformer's
        (and the cross encoder's) blocks <- the first CLIP text blocks. With ``wti`` this is a
        usable zero-shot model (near-uniform token weights)."""
        for name in HEAD_MODULES:
            if hasattr(self, name):
                init_weights_like_original(getattr(self, name))
        text = self.clip.text_model
        if self.config.agg_module in ("seqTransf", "seqLSTM"):
            start_from_clip_text(text, self.frame_position_embeddings, getattr(self, "transformerClip", None))
        if self.config.interaction == "xti":
            start_from_clip_text(text, self.cross.position_embeddings, self.cross.transformer)

    # -- precision and runtimes (see docs/operators/drl.md) -----------------------------------
    def apply_precision(self, precision: str) -> None:
        """bf16 weights in the CLIP towers; the temporal module and the interaction stay float32."""
        super().apply_precision(precision)
        self.clip.apply_precision(precision)

    def accelerate(self, runners) -> None:
        self.clip.accelerate(runners)

    # -- features -------------------------------------------------------------------------------
    def encode_text(self, text_ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> every token's projected feature (N, L, D), padding included."""
        return self.clip.encode_text(text_ids).tokens.float()

    def encode_frames(self, video: torch.Tensor, video_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 3, H, W) pixels -> one CLIP image feature per frame (B, T, D); padded frames too
        (with ``video_mask``, identical padded frames are encoded once: same output)."""
        return self.clip.encode_frames(video, video_mask).float()

    def aggregate_frames(self, frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """The configured temporal module over (B, T, D) frame features (residual)."""
        agg = self.config.agg_module
        if agg == "None":
            return frames
        if agg == "seqLSTM":
            return seq_lstm(self.lstm_visual, frames, video_mask)
        return seq_transformer(frames, video_mask, self.frame_position_embeddings, self.transformerClip)

    def encode_video(self, video: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) pixels + (B, T) mask -> aggregated frame features (B, T, D)."""
        frames = self.encode_frames(video, video_mask)
        with full_precision(frames.device):
            return self.aggregate_frames(frames, video_mask)

    # -- interaction -----------------------------------------------------------------------------
    def interact(
        self,
        text_feat: torch.Tensor,
        video_feat: torch.Tensor,
        text_mask: torch.Tensor,
        video_mask: torch.Tensor,
        train: bool | None = None,
    ) -> I.InteractionOutput:
        """The configured interaction's logits (A texts x B videos).

        ``train`` (default: ``self.training``) selects the original's training-mode output:
        logits multiplied by ``exp(logit_scale)`` and the channel decorrelation term computed.
        Evaluation logits are unscaled.
        """
        train = self.training if train is None else train
        _check_pair(text_feat, video_feat, text_mask, video_mask)
        with full_precision(text_feat.device):
            return self._interact(text_feat.float(), video_feat.float(), text_mask, video_mask, train)

    def _interact(self, text_feat, video_feat, text_mask, video_mask, train: bool) -> I.InteractionOutput:
        kind = self.config.interaction
        if kind in ("ti", "wti"):
            out = self._token_wise(text_feat, video_feat, text_mask, video_mask, train)
        elif kind == "dp":
            out = self._dot_product(text_feat, video_feat, text_mask, video_mask, train)
        else:
            out = self._cross(text_feat, video_feat, text_mask, video_mask)
        if train:
            scale = self.clip.logit_scale.exp()
            out.t2v, out.v2t = out.t2v * scale, out.v2t * scale
        return out

    def similarity(
        self, text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        """Evaluation logits (A, B): what the original ranks with."""
        return self.interact(text_feat, video_feat, text_mask, video_mask, train=False).t2v

    def loss(
        self, text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        """The training objective for a batch of matched pairs (text i with video i):
        (CrossEn(t2v) + CrossEn(v2t)) / 2 + cdcr_lambda * cdcr, on train-mode logits."""
        out = self.interact(text_feat, video_feat, text_mask, video_mask, train=True)
        contrastive = (I.contrastive_cross_entropy(out.t2v) + I.contrastive_cross_entropy(out.v2t)) / 2.0
        return contrastive + out.cdcr_loss * self.config.cdcr_lambda

    def forward(
        self, text_ids: torch.Tensor, text_mask: torch.Tensor, video: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        """Training mode: the loss of matched pairs; evaluation: the (A, B) logits."""
        text_feat = self.encode_text(text_ids)
        video_feat = self.encode_video(video, video_mask)
        if self.training:
            return self.loss(text_feat, video_feat, text_mask, video_mask)
        return self.similarity(text_feat, video_feat, text_mask, video_mask)

    def token_weights(
        self, text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wti's per-token and per-frame weights (softmax over valid positions)."""
        if self.config.interaction != "wti":
            raise ValueError(f"token weights exist for interaction 'wti' only (this model: {self.config.interaction!r})")
        return (
            I.token_weights(self.text_weight_fc, text_feat, text_mask),
            I.token_weights(self.video_weight_fc, video_feat, video_mask),
        )

    def _token_wise(self, text_feat, video_feat, text_mask, video_mask, train: bool) -> I.InteractionOutput:
        cfg = self.config
        extras: dict[str, torch.Tensor] = {}
        sim = I.token_similarity(text_feat, video_feat, text_mask, video_mask)
        extras["token_sim"] = sim
        if cfg.interaction == "wti":
            text_weight, video_weight = self.token_weights(text_feat, video_feat, text_mask, video_mask)
            logits, t2v, v2t = I.wti_logits(sim, text_weight, video_weight)
            extras.update(text_weight=text_weight, video_weight=video_weight, wti_t2v=t2v, wti_v2t=v2t)
        else:
            logits = I.ti_logits(sim, text_mask, video_mask)
        cdcr: torch.Tensor | float = 0.0
        if train and cfg.cdcr:
            # the regulariser works on the L2-normalised token / frame features
            t, v = I.l2_normalise(text_feat), I.l2_normalise(video_feat)
            a1, a2 = cfg.cdcr_alpha1, cfg.cdcr_alpha2
            if cfg.cdcr == 1:
                cdcr = I.cdcr_random_tokens(t, v, text_mask, video_mask, a1, a2)
            elif cfg.cdcr == 2:
                cdcr = I.cdcr_best_partners(sim, t, v, text_mask, video_mask, a1, a2)
            elif cfg.interaction == "wti":
                cdcr = I.cdcr_weighted_partners(sim, t, v, text_mask, video_mask, text_weight, video_weight, a1, a2)
            else:
                raise ValueError("cdcr=3 weights rows by the wti token weights; interaction 'ti' has none (use cdcr 1 or 2)")
        return I.InteractionOutput(t2v=logits, v2t=logits.T, cdcr_loss=cdcr, extras=extras)

    def _dot_product(self, text_feat, video_feat, text_mask, video_mask, train: bool) -> I.InteractionOutput:
        text_vec, video_vec = I.dp_vectors(text_feat, video_feat, text_mask, video_mask)
        logits = text_vec @ video_vec.T
        cdcr: torch.Tensor | float = 0.0
        if train and self.config.cdcr:  # dp has one regulariser, used for any non-zero cdcr
            cdcr = I.cdcr_pooled(text_vec, video_vec, self.config.cdcr_alpha1, self.config.cdcr_alpha2)
        return I.InteractionOutput(t2v=logits, v2t=logits.T, cdcr_loss=cdcr)

    def _cross(self, text_feat, video_feat, text_mask, video_mask) -> I.InteractionOutput:
        """xti: the text's end token and the frames through the cross encoder, every pair.

        The original runs two passes (texts x all videos, all texts x videos) that coincide on
        one process; a single pass gives both matrices.
        """
        n_text, n_video = text_feat.shape[0], video_feat.shape[0]
        eot = I.eot_features(text_feat, text_mask).unsqueeze(1)  # (A, 1, D), mask forced to 1
        text_rows = eot.repeat_interleave(n_video, dim=0)  # text-major pairs
        video_rows = video_feat.repeat(n_text, 1, 1)
        mask_rows = video_mask.repeat(n_text, 1)
        pair_mask = torch.cat([torch.ones_like(mask_rows[:, :1]), mask_rows], dim=1)
        _, pooled = self.cross(torch.cat([text_rows, video_rows], dim=1), pair_mask)
        logits = self.similarity_dense(pooled).squeeze(-1).view(n_text, n_video)
        if self.training and self.cross.dropout.p > 0:
            # train mode: the original's second pass draws its own dropout mask
            _, pooled2 = self.cross(torch.cat([text_rows, video_rows], dim=1), pair_mask)
            v2t = self.similarity_dense(pooled2).squeeze(-1).view(n_text, n_video).T
        else:
            v2t = logits.T
        return I.InteractionOutput(t2v=logits, v2t=v2t)


def _check_pair(text_feat, video_feat, text_mask, video_mask) -> None:
    if text_feat.dim() != 3 or video_feat.dim() != 3:
        raise ValueError(
            f"DRL scores token features: text (A, Nt, D) and video (B, Nv, D), got {tuple(text_feat.shape)} and {tuple(video_feat.shape)}"
        )
    if text_mask.shape != text_feat.shape[:2] or video_mask.shape != video_feat.shape[:2]:
        raise ValueError(
            f"masks must match the features: text mask {tuple(text_mask.shape)} vs {tuple(text_feat.shape[:2])}, "
            f"video mask {tuple(video_mask.shape)} vs {tuple(video_feat.shape[:2])}"
        )
    if text_feat.shape[-1] != video_feat.shape[-1]:
        raise ValueError(f"text and video feature sizes differ: {text_feat.shape[-1]} vs {video_feat.shape[-1]}")
