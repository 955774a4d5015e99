"""DRL's temporal aggregation of per-frame CLIP features (``seqTransf``, ``seqLSTM``, ``None``).

Both sequential modules are residual: their output is added to the frame features they got.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def lstm_aggregate(lstm: nn.LSTM, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``seqLSTM``: run the LSTM over each video's valid frames only (packed by length).

    Positions after a video's length are zeros (from unpacking) up to the longest length in the
    batch, the input features beyond it; then the input features are added (residual).
    """
    lengths = mask.long().sum(dim=-1)
    if bool((lengths == 0).any()):
        raise ValueError("seqLSTM needs at least one valid frame per video (a video_mask row is all zeros)")
    packed = pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True)
    out = torch.cat((out, frames[:, out.shape[1]:]), dim=1)
    return out + frames


def transformer_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive key mask of module_cross: -1e6 on padded keys, (N, L, L); padded queries still run."""
    extended = (1.0 - mask.to(dtype).unsqueeze(1)) * -1000000.0
    return extended.expand(-1, mask.shape[1], -1)
