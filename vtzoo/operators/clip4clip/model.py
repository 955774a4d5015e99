"""CLIP4Clip (Luo et al., 2021, arXiv 2104.08860): CLIP towers + a video-text similarity head.

* Text: CLIP's projected EOT vector (one vector per text).
* Video: CLIP's projected class token of every frame (padded frames are encoded too; only
  the masks remove them), then one of four heads:

  - ``meanP``: parameter-free masked mean.
  - ``seqLSTM``: a 1-layer LSTM over the valid frames (packed), residual to the frames.
  - ``seqTransf``: frame position embeddings + a temporal transformer, residual to the frames.
  - ``tightTransf``: a cross encoder over ``[text, frames]`` per (text, video) pair, scored
    by a linear layer.

  The three "loose" heads score ``logit_scale.exp() * cos(text, video)``, where the video
  vector is the L2-normalised masked mean of the L2-normalised (contextualised) frames.

Width constraints of the original: the temporal transformer has the *text* transformer's width
and heads, the frame position embedding / LSTM / cross encoder the cross hidden size; so every
head but meanP needs ``clip.embed_dim == clip.transformer_width == cross_hidden_size``.

Starting from plain CLIP (the ``openai-clip`` / ``transformers-clip`` converters), the head is
initialised as the original starts fine-tuning: :meth:`CLIP4ClipModel.init_like_original`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from vtzoo.backbones.clip import CLIPTowers, TextFeatures
from vtzoo.backbones.cross import (
    CrossEncoder,
    TemporalTransformer,
    init_weights_like_original,
    pool_frames,
    seq_lstm,
    seq_transformer,
    start_from_clip_text,
)
from vtzoo.modeling import PretrainedModel, StateDict
from vtzoo.precision import full_precision
from vtzoo.operators.clip4clip.config import CLIP4ClipConfig

# the modules of the similarity heads, as the original names them
HEAD_MODULES = ("frame_position_embeddings", "transformerClip", "lstm_visual", "cross", "similarity_dense")


class UntrainedHeadWarning(UserWarning):
    """A similarity head was initialised for fine-tuning, not loaded from trained weights."""


class CLIP4ClipModel(PretrainedModel):
    """CLIP4Clip network. Module names follow the original (``clip``, ``frame_position_embeddings``,
    ``transformerClip``, ``lstm_visual``, ``cross``, ``similarity_dense``)."""

    family = "clip4clip"
    config_class = CLIP4ClipConfig

    def __init__(self, config: CLIP4ClipConfig):
        super().__init__(config)
        header, hidden, sizes = config.sim_header, config.cross_hidden_size, config.clip
        self.clip = CLIPTowers(sizes, linear_patch=config.linear_patch)
        if header in ("seqLSTM", "seqTransf"):
            # created for seqLSTM too (and kept in its checkpoints), but only seqTransf uses it
            self.frame_position_embeddings = nn.Embedding(sizes.context_length, hidden)
        if header == "seqTransf":
            # the text transformer's width and heads, the cross config's depth
            self.transformerClip = TemporalTransformer(
                sizes.transformer_width, config.cross_num_hidden_layers, sizes.transformer_heads
            )
        if header == "seqLSTM":
            self.lstm_visual = nn.LSTM(hidden, hidden, num_layers=1, batch_first=True, bidirectional=False)
        if header == "tightTransf":
            self.cross = CrossEncoder(
                hidden,
                config.cross_num_hidden_layers,
                config.cross_num_attention_heads,
                max_positions=sizes.context_length,
                dropout=config.cross_hidden_dropout_prob,
            )
            self.similarity_dense = nn.Linear(hidden, 1)

    def heads(self) -> list[nn.Module]:
        return [getattr(self, name) for name in HEAD_MODULES if hasattr(self, name)]

    def init_like_original(self, loaded: StateDict) -> None:
        """The head as the original starts fine-tuning from CLIP (the model holds CLIP already):
        its ``init_weights``, then its "initialization trick": ``frame_position_embeddings`` and
        the cross encoder's positions <- CLIP's text position embedding, the ``transformerClip``
        and ``cross`` blocks <- the first ``cross_num_hidden_layers`` text blocks. The LSTM, the
        cross pooler and ``similarity_dense`` stay random: only meanP gives CLIP's zero-shot ranking.
        """
        heads = self.heads()
        if not heads:
            return
        for head in heads:
            init_weights_like_original(head)
        text = self.clip.text_model
        if self.config.sim_header in ("seqLSTM", "seqTransf"):
            start_from_clip_text(text, self.frame_position_embeddings, getattr(self, "transformerClip", None))
        if self.config.sim_header == "tightTransf":
            start_from_clip_text(text, self.cross.position_embeddings, self.cross.transformer)
        warnings.warn(
            f"CLIP4Clip {self.config.sim_header}: the similarity head is initialised from CLIP as for fine-tuning, "
            "not trained; only meanP reproduces CLIP's zero-shot ranking. Load fine-tuned weights for this head.",
            UntrainedHeadWarning,
            stacklevel=2,
        )

    # -- precision and runtimes (see docs/operators/clip4clip.md) ---------------------------
    def apply_precision(self, precision: str) -> None:
        """bf16 weights in the CLIP towers; the heads and the similarity stay float32."""
        super().apply_precision(precision)
        self.clip.apply_precision(precision)

    def accelerate(self, runners) -> None:
        if self.config.linear_patch == "2d":  # the 3D patch embedding convolves frames together
            self.clip.accelerate(runners)

    # -- encoders -----------------------------------------------------------------------------
    def encode_text(self, input_ids: torch.Tensor) -> TextFeatures:
        """(N, L) CLIP token ids (0-padded) -> pooled EOT vector (N, D) and all tokens (N, L, D)."""
        return self.clip.encode_text(input_ids)

    def encode_frames(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 3, H, W) normalised frames -> per-frame CLIP vectors (B, T, D); with the frame
        ``mask``, identical padded frames are encoded once (same output)."""
        return self.clip.encode_frames(video, mask)

    # -- loose heads --------------------------------------------------------------------------
    def contextualise(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Apply the temporal module of seqLSTM / seqTransf (identity for meanP)."""
        header = self.config.sim_header
        if header == "seqTransf":
            return seq_transformer(frames, mask, self.frame_position_embeddings, self.transformerClip)
        if header == "seqLSTM":
            return seq_lstm(self.lstm_visual, frames, mask)
        return frames

    def video_vector(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The loose heads' video vector (B, D), unit length (float32 in every precision)."""
        with full_precision(frames.device):
            frames = frames.float()
            return pool_frames(self.contextualise(frames, mask), mask)

    def loose_logits(self, text: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """``logit_scale.exp() * cos``: text (N, D) EOT vectors, video (M, D) video vectors."""
        with full_precision(text.device):
            text, video = text.float(), video.float()
            text = text / text.norm(dim=-1, keepdim=True)
            video = video / video.norm(dim=-1, keepdim=True)
            return self.clip.logit_scale.exp() * text @ video.T

    # -- tight head ---------------------------------------------------------------------------
    def cross_logits(self, text: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """tightTransf: the cross encoder over ``[text EOT vector, frames]`` of every pair.

        text (N, D), frames (M, T, D), mask (M, T) -> logits (N, M). No normalisation, no
        logit_scale. Pairs are scored in chunks of ``chunk`` pairs (same result as all at once).
        """
        with full_precision(text.device):
            return self._cross_logits(text.float(), frames.float(), mask, chunk)

    def _cross_logits(self, text: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, chunk: int) -> torch.Tensor:
        n, (m, t, d) = text.shape[0], frames.shape
        pair_text = text[:, None, None, :].expand(n, m, 1, d).reshape(n * m, 1, d)
        pair_frames = frames[None].expand(n, m, t, d).reshape(n * m, t, d)
        text_mask = torch.ones(n * m, 1, dtype=mask.dtype, device=mask.device)
        pair_mask = torch.cat([text_mask, mask[None].expand(n, m, t).reshape(n * m, t)], dim=1)
        logits = []
        for start in range(0, n * m, chunk):
            stop = start + chunk
            sequence = torch.cat([pair_text[start:stop], pair_frames[start:stop]], dim=1)
            _, pooled = self.cross(sequence, pair_mask[start:stop])
            logits.append(self.similarity_dense(pooled).squeeze(-1))
        return torch.cat(logits).view(n, m)

    # -- the original's scoring ---------------------------------------------------------------
    def similarity_logits(self, text: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the original ranks with: ``get_similarity_logits`` at evaluation, (N_text, N_video).

        text: EOT vectors (N, D); frames: per-frame CLIP vectors (M, T, D); mask: (M, T).
        """
        if self.config.loose:
            return self.loose_logits(text, self.video_vector(frames, mask))
        return self.cross_logits(text, frames, mask)
