"""DRL's text-video interactions, channel decorrelation regularisation and contrastive loss.

Pure functions over feature tensors, so the scoring math can be used (and tested) without the
CLIP towers:

* ``ti``  token-wise interaction: every text token finds its best frame (and every frame its
  best token); the best similarities are averaged over the valid tokens / frames.
* ``wti`` weighted token-wise interaction: the same maxima, averaged with weights predicted by
  small networks from the (unnormalised) token and frame features.
* ``dp``  dot product of the text's end token with the mean of the normalised frames.
* ``xti`` cross-encoder scoring lives in the model (it needs its modules); its input pairing is
  built here.

Shapes: text features (A, Nt, D) with mask (A, Nt); video features (B, Nv, D) with mask (B, Nv).
Logit matrices are text-major (A, B); the video-to-text matrix is (B, A).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vtzoo.backbones.cross import l2_normalise, pool_frames


@dataclass
class InteractionOutput:
    """Logits of one interaction plus the intermediates the paper's figures and the loss use."""

    t2v: torch.Tensor  # (A, B)
    v2t: torch.Tensor  # (B, A)
    cdcr_loss: torch.Tensor | float = 0.0
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


# -- small building blocks --------------------------------------------------------------------
def build_weight_network(width: int, arch: int) -> nn.Module:
    """The token / frame weight predictor of ``wti``.

    Layouts match the original's module indices so checkpoints map one to one: arch 1 is a
    single Linear; arch 2 Linear-ReLU-Linear (``.0``, ``.2``); arch 3 Linear-ReLU-Linear-ReLU-
    Linear (``.0``, ``.2``, ``.4``).
    """
    if arch == 1:
        return nn.Linear(width, 1)
    if arch == 2:
        return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
    if arch == 3:
        return nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1)
        )
    raise ValueError(f"wti_arch must be 1, 2 or 3, got {arch!r}")


def eot_features(text_feat: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """The feature at the last valid position (sum(mask) - 1) of each text: (A, Nt, D) -> (A, D).

    DRL picks the end token from the mask, not from CLIP's argmax of the ids.
    """
    last = text_mask.long().sum(dim=-1) - 1
    return text_feat[torch.arange(text_feat.shape[0], device=text_feat.device), last]




def token_weights(weight_net: nn.Module, feat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over positions of the weight network's scores; padding gets weight 0 (-inf score)."""
    scores = weight_net(feat).squeeze(-1)
    scores = scores.masked_fill(mask == 0, float("-inf"))
    return torch.softmax(scores, dim=-1)


def token_similarity(
    text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    """Cosine similarity of every token with every frame, (A, B, Nt, Nv).

    Padding is removed by MULTIPLYING with the masks, so masked entries are 0 (not -inf): the
    maxima taken afterwards see those zeros, as in the original.
    """
    sim = torch.einsum("atd,bvd->abtv", l2_normalise(text_feat), l2_normalise(video_feat))
    sim = torch.einsum("abtv,at->abtv", sim, text_mask.to(sim.dtype))
    return torch.einsum("abtv,bv->abtv", sim, video_mask.to(sim.dtype))


# -- interactions ----------------------------------------------------------------------------
def ti_logits(sim: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    """Token-wise interaction: mean over valid tokens of their best frame, mean over valid frames
    of their best token, averaged. (A, B)."""
    t2v = sim.max(dim=-1).values.sum(dim=2) / text_mask.sum(-1).unsqueeze(1)
    v2t = sim.max(dim=-2).values.sum(dim=2) / video_mask.sum(-1).unsqueeze(0)
    return (t2v + v2t) / 2.0


def wti_logits(
    sim: torch.Tensor, text_weight: torch.Tensor, video_weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted token-wise interaction; returns (logits, text-to-video part, video-to-text part)."""
    t2v = torch.einsum("abt,at->ab", sim.max(dim=-1).values, text_weight)
    v2t = torch.einsum("abv,bv->ab", sim.max(dim=-2).values, video_weight)
    return (t2v + v2t) / 2.0, t2v, v2t


def dp_vectors(
    text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two unit vectors ``dp`` compares: the text's end token and the re-normalised mean of
    the L2-normalised valid frames."""
    return l2_normalise(eot_features(text_feat, text_mask)), pool_frames(video_feat, video_mask)


# -- channel decorrelation regularisation ----------------------------------------------------
# A channel whose spread over the rows is below this has no defined correlation. The regularisers
# standardise L2-normalised features (channels in [-1, 1]), so this is far below any real spread
# and above float32 rounding of the mean of identical rows.
CONSTANT_CHANNEL_STD = 1e-6


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over rows with the unbiased ``torch.std``.

    A constant channel standardises to 0 (uncorrelated with everything) instead of 0 / 0. It
    happens in training: CLIP's start token sees only itself under causal attention, so its
    feature is the same in every text, and when it is every frame's best partner (cdcr 2 / 3) the
    partner rows are identical. The division is guarded on both branches so the gradient stays
    finite too; a channel with a spread is standardised exactly as before.
    """
    std = x.std(0)
    varies = std > CONSTANT_CHANNEL_STD
    centred = x - x.mean(0)
    return torch.where(varies, centred / torch.where(varies, std, torch.ones_like(std)), torch.zeros_like(centred))


def decorrelation_penalty(c: torch.Tensor, alpha1: float, alpha2: float) -> torch.Tensor:
    """alpha1 * sum((diag(c) - 1)^2) + alpha2 * sum(offdiag(c)^2) of a D x D correlation matrix."""
    d = c.shape[0]
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = c.flatten()[1:].view(d - 1, d + 1)[:, :-1].pow(2).sum()
    return on_diag * alpha1 + off_diag * alpha2


def cdcr_pooled(text_vec: torch.Tensor, video_vec: torch.Tensor, alpha1: float, alpha2: float) -> torch.Tensor:
    """``dp``'s regulariser: cross-correlation of the matched (row i with row i) pooled vectors."""
    za, zb = standardise(text_vec), standardise(video_vec)
    c = torch.einsum("bm,bn->mn", za, zb) / za.shape[0]
    return decorrelation_penalty(c, alpha1, alpha2)


def cdcr_random_tokens(
    text_feat: torch.Tensor,
    video_feat: torch.Tensor,
    text_mask: torch.Tensor,
    video_mask: torch.Tensor,
    alpha1: float,
    alpha2: float,
) -> torch.Tensor:
    """cdcr 1: one random valid token per text paired with one random valid frame of its video.

    The draws use the global torch generator exactly like the original (``randint_like`` of the
    valid counts, modulo the count), so seeding ``torch.manual_seed`` reproduces its values.
    """
    text_len, video_len = text_mask.sum(-1), video_mask.sum(-1)
    rows = torch.arange(text_feat.shape[0], device=text_feat.device)
    t = text_feat[rows, torch.randint_like(text_len, 0, 10000) % text_len, :]
    v = video_feat[torch.arange(video_feat.shape[0], device=video_feat.device),
                   torch.randint_like(video_len, 0, 10000) % video_len, :]
    za, zb = standardise(t), standardise(v)
    c = torch.einsum("ac,ad->cd", za, zb) / za.shape[0]
    return decorrelation_penalty(c, alpha1, alpha2)


def _matched_partners(
    sim: torch.Tensor, text_feat: torch.Tensor, video_feat: torch.Tensor, text_mask: torch.Tensor, video_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each valid token its best frame in the matched video, and for each valid frame its
    best token in the matched text (text i is matched with video i; the arg-max runs over the
    mask-multiplied similarities, so a padded position can be the partner)."""
    if sim.shape[0] != sim.shape[1]:
        raise ValueError(
            f"cdcr 2/3 pair text i with video i: the batch needs as many texts as videos, got {sim.shape[0]} and {sim.shape[1]}"
        )
    n = sim.shape[0]
    diag = torch.arange(n, device=sim.device)
    best_frame = sim.max(dim=-1).indices[diag, diag]  # (B, Nt)
    best_token = sim.max(dim=-2).indices[diag, diag]  # (B, Nv)
    partner_text = text_feat[diag.repeat_interleave(best_token.shape[1]), best_token.flatten()]
    partner_video = video_feat[diag.repeat_interleave(best_frame.shape[1]), best_frame.flatten()]
    t_valid = text_mask.flatten().bool()
    v_valid = video_mask.flatten().bool()
    tokens = text_feat.reshape(-1, text_feat.shape[-1])[t_valid]
    frames = video_feat.reshape(-1, video_feat.shape[-1])[v_valid]
    return tokens, partner_video[t_valid], frames, partner_text[v_valid], t_valid, v_valid


def cdcr_best_partners(
    sim: torch.Tensor,
    text_feat: torch.Tensor,
    video_feat: torch.Tensor,
    text_mask: torch.Tensor,
    video_mask: torch.Tensor,
    alpha1: float,
    alpha2: float,
) -> torch.Tensor:
    """cdcr 2: correlation of every valid token with its best frame (and frame with best token),
    each averaged over its rows; the two correlation matrices are averaged."""
    tokens, token_partners, frames, frame_partners, _, _ = _matched_partners(
        sim, text_feat, video_feat, text_mask, video_mask
    )
    za, zb = standardise(tokens), standardise(token_partners)
    xa, xb = standardise(frames), standardise(frame_partners)
    c1 = torch.einsum("ac,ad->cd", za, zb) / za.shape[0]
    c2 = torch.einsum("ac,ad->cd", xa, xb) / xa.shape[0]
    return decorrelation_penalty((c1 + c2) / 2.0, alpha1, alpha2)


def cdcr_weighted_partners(
    sim: torch.Tensor,
    text_feat: torch.Tensor,
    video_feat: torch.Tensor,
    text_mask: torch.Tensor,
    video_mask: torch.Tensor,
    text_weight: torch.Tensor,
    video_weight: torch.Tensor,
    alpha1: float,
    alpha2: float,
) -> torch.Tensor:
    """cdcr 3 (the paper's): like cdcr 2, but each row's outer product is weighted by the wti
    token / frame weight and the sum is divided by the batch size (not the number of rows)."""
    tokens, token_partners, frames, frame_partners, t_valid, v_valid = _matched_partners(
        sim, text_feat, video_feat, text_mask, video_mask
    )
    za, zb = standardise(tokens), standardise(token_partners)
    xa, xb = standardise(frames), standardise(frame_partners)
    batch = text_feat.shape[0]
    c1 = torch.einsum("acd,a->cd", torch.einsum("ac,ad->acd", za, zb), text_weight.flatten()[t_valid]) / batch
    c2 = torch.einsum("acd,a->cd", torch.einsum("ac,ad->acd", xa, xb), video_weight.flatten()[v_valid]) / batch
    return decorrelation_penalty((c1 + c2) / 2.0, alpha1, alpha2)


# -- loss ------------------------------------------------------------------------------------
def contrastive_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean negative log-softmax of the diagonal (row i's positive is column i), one direction."""
    return -torch.diag(F.log_softmax(logits, dim=-1)).mean()
