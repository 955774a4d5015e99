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
head but meanP needs ``embed_dim == transformer_width == cross_hidden_size``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vtzoo.backbones.clip import CLIPTowers, TextFeatures
from vtzoo.backbones.cross import CrossEncoder, TemporalTransformer
from vtzoo.operators.clip4clip.config import CLIP4ClipConfig
from vtzoo.operators.clip4clip.convert import (
    convert_openai_clip_checkpoint,
    convert_original_state_dict,
    convert_transformers_clip_checkpoint,
)
from vtzoo.precision import full_precision
from vtzoo.registry.weights import PretrainedModel


def build_heads(config: CLIP4ClipConfig) -> nn.ModuleDict:
    """The head modules of ``config.sim_header``, named as in the original checkpoints."""
    header, hidden = config.sim_header, config.cross_hidden_size
    heads = nn.ModuleDict()
    if header in ("seqLSTM", "seqTransf"):
        # created for seqLSTM too (and kept in its checkpoints), but only seqTransf uses it
        heads["frame_position_embeddings"] = nn.Embedding(config.context_length, hidden)
    if header == "seqTransf":
        # the text transformer's width and heads, the cross config's depth
        heads["transformerClip"] = TemporalTransformer(
            config.transformer_width, config.cross_num_hidden_layers, config.transformer_heads
        )
    if header == "seqLSTM":
        heads["lstm_visual"] = nn.LSTM(hidden, hidden, num_layers=1, batch_first=True, bidirectional=False)
    if header == "tightTransf":
        heads["cross"] = CrossEncoder(
            hidden,
            config.cross_num_hidden_layers,
            config.cross_num_attention_heads,
            max_positions=config.context_length,
            dropout=config.cross_hidden_dropout_prob,
        )
        heads["similarity_dense"] = nn.Linear(hidden, 1)
    return heads


class CLIP4ClipModel(PretrainedModel):
    """CLIP4Clip network. Module names follow the original (``clip``, ``frame_position_embeddings``,
    ``transformerClip``, ``lstm_visual``, ``cross``, ``similarity_dense``)."""

    family = "clip4clip"
    config_class = CLIP4ClipConfig
    converters = {
        "original": convert_original_state_dict,
        "openai-clip": convert_openai_clip_checkpoint,
        "transformers-clip": convert_transformers_clip_checkpoint,
    }

    def __init__(self, config: CLIP4ClipConfig):
        super().__init__(config)
        self.clip = CLIPTowers(config.clip_sizes, linear_patch=config.linear_patch)
        for name, module in build_heads(config).items():
            self.add_module(name, module)

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
            positions = torch.arange(frames.shape[1], device=frames.device)
            hidden = frames + self.frame_position_embeddings(positions)  # ids 0..T-1 whatever the mask
            return self.transformerClip(hidden, mask) + frames
        if header == "seqLSTM":
            return self._lstm(frames, mask)
        return frames

    def _lstm(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=-1).cpu()
        if bool((lengths == 0).any()):
            raise ValueError("seqLSTM needs at least one valid frame per video (a video_mask row is all zeros)")
        packed = pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.lstm_visual(packed)[0], batch_first=True)
        # beyond the longest valid length the original keeps the input frames
        out = torch.cat([out, frames[:, out.shape[1] :]], dim=1)
        return out + frames

    @staticmethod
    def pool_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L2-normalise each frame, masked mean (empty -> divide by 1), L2-normalise: (B, D)."""
        frames = frames / frames.norm(dim=-1, keepdim=True)
        weights = mask.to(frames.dtype).unsqueeze(-1)
        count = weights.sum(dim=1)
        count = torch.where(count == 0, torch.ones_like(count), count)
        pooled = (frames * weights).sum(dim=1) / count
        return pooled / pooled.norm(dim=-1, keepdim=True)

    def video_vector(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The loose heads' video vector (B, D), unit length (float32 in every precision)."""
        with full_precision(frames.device):
            frames = frames.float()
            return self.pool_frames(self.contextualise(frames, mask), mask)

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
