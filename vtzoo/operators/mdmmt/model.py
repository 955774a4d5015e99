"""MDMMT / MMT: a BERT text encoder and a multi-modal video transformer over expert features.

Video side: every expert's feature tokens are projected and L2-normalised (``ReduceDim``), an
[AGG] token per expert carries the projected max-pool of its raw features, token types are the
experts' ids and position ids come from the tokens' timestamps. The transformer's output at each
expert's [AGG] token, L2-normalised, is that expert's video embedding.

Text side: the BERT output at token 0 feeds one gated embedding unit per expert (unit-norm
outputs) and a softmax over experts (the mixture weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertEncoder

from vtzoo.errors import InputError
from vtzoo.modeling import PretrainedModel
from vtzoo.operators.mdmmt.config import MdmmtConfig
from vtzoo.precision import DTYPES, cast_matmul_weights

# Ids the original writes into the video transformer's input_ids (its embeddings ignore them).
CLS_ID, AGG_ID, FEA_ID = 0, 2, 6
# The original's additive attention mask value (not the dtype minimum current transformers use).
MASK_VALUE = -10000.0


class ReduceDim(nn.Module):
    """Linear projection followed by L2 normalisation."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(x), dim=-1)


class ContextGating(nn.Module):
    """x * sigmoid(BatchNorm(Linear(x))): a GLU over the concatenation [x, BN(fc(x))]."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.batch_norm = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(torch.cat((x, self.batch_norm(self.fc(x))), dim=1), dim=1)


class GatedEmbeddingUnit(nn.Module):
    """Linear -> context gating -> L2 normalisation."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.cg = ContextGating(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.cg(self.fc(x)), dim=-1)


class VideoEmbeddings(nn.Module):
    """LayerNorm(position + token type + features): the video transformer has no word embeddings."""

    def __init__(self, config: MdmmtConfig):
        super().__init__()
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, features: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        x = self.position_embeddings(position_ids) + self.token_type_embeddings(token_type_ids) + features
        return self.dropout(self.LayerNorm(x))


class VideoTransformer(nn.Module):
    """Post-LN BERT layers (transformers' ``BertEncoder``) over expert tokens."""

    def __init__(self, config: MdmmtConfig):
        super().__init__()
        bert_config = BertConfig(
            vocab_size=1,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            hidden_act=config.hidden_act,
            hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps,
        )
        # fused attention; the original's additive mask (-10000 on padding) goes in unchanged
        bert_config._attn_implementation = "sdpa"
        self.embeddings = VideoEmbeddings(config)
        self.encoder = BertEncoder(bert_config)

    def forward(
        self,
        features: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.embeddings(features, token_type_ids, position_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * MASK_VALUE
        return self.encoder(hidden, attention_mask=additive).last_hidden_state


@dataclass
class VideoTokens:
    """The exact inputs of the video transformer (one row per video)."""

    input_ids: torch.Tensor  # (B, S) CLS/AGG/FEA ids, informative only
    token_type_ids: torch.Tensor  # (B, S)
    position_ids: torch.Tensor  # (B, S)
    attention_mask: torch.Tensor  # (B, S)
    features: torch.Tensor  # (B, S, H)
    agg_positions: list[int]  # index of each expert's [AGG] token
    available: torch.Tensor  # (B, M) 1 if the expert has at least one valid token
    reduced_features: dict[str, torch.Tensor]  # ReduceDim of every feature token
    reduced_maxpool: dict[str, torch.Tensor]  # ReduceDim of the pooled [AGG] input


@dataclass
class VideoOutput:
    expert_embeddings: torch.Tensor  # (B, M, D) unit-norm per expert
    available: torch.Tensor  # (B, M) float
    last_hidden: torch.Tensor  # (B, S, H)
    tokens: VideoTokens


@dataclass
class TextOutput:
    expert_embeddings: torch.Tensor  # (N, M, D) unit-norm per expert
    weights: torch.Tensor  # (N, M) mixture weights (sum to 1)
    cls: torch.Tensor  # (N, Ht) token-0 output of the text BERT
    last_hidden: torch.Tensor  # (N, L, Ht)


def masked_max(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over valid tokens (mask 1); a row without any valid token gives zeros."""
    valid = mask.to(torch.bool)
    filled = features.masked_fill(~valid[..., None], float("-inf"))
    pooled = filled.max(dim=1).values
    return torch.where(valid.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


class MdmmtModel(PretrainedModel):
    """The MDMMT (or, with ``architecture="mmt"``, MMT) video and text encoders."""

    family = "mdmmt"
    config_class = MdmmtConfig

    def __init__(self, config: MdmmtConfig):
        super().__init__(config)
        names = config.expert_names
        reduce_to = config.hidden_size if config.architecture == "mdmmt" else config.same_dim
        self.video_dim_reduce = nn.ModuleDict({e["name"]: ReduceDim(int(e["dim"]), reduce_to) for e in config.experts})
        if config.architecture == "mdmmt" and config.same_dim != config.hidden_size:
            self.video_dim_reduce_out = nn.ModuleDict({n: ReduceDim(config.hidden_size, config.same_dim) for n in names})
        self.vid_bert = VideoTransformer(config)
        text_config = BertConfig(**config.text_bert)
        text_config._attn_implementation = "eager"
        self.txt_bert = BertModel(text_config, add_pooling_layer=False)
        text_dim = text_config.hidden_size
        self.text_gu = nn.ModuleDict({n: GatedEmbeddingUnit(text_dim, config.same_dim) for n in names})
        self.moe_fc_txt = nn.ModuleDict({n: nn.Linear(text_dim, 1) for n in names})
        self.moe_txt_dropout = nn.Dropout(config.text_bert.get("hidden_dropout_prob", 0.1))

    # -- video ---------------------------------------------------------------------------------
    def video_tokens(
        self,
        features: dict[str, torch.Tensor],
        features_t: dict[str, torch.Tensor],
        features_ind: dict[str, torch.Tensor],
        features_maxpool: dict[str, torch.Tensor] | None = None,
    ) -> VideoTokens:
        """Lay out [CLS], then per expert its [AGG] token and its feature tokens.

        ``features_maxpool`` (MMT's collate provides it: the max over ALL raw features) replaces
        the max-pool of the padded tokens that MDMMT computes.
        """
        cfg = self.config
        first = features[cfg.experts[0]["name"]]
        batch, device, dtype = first.shape[0], first.device, first.dtype
        hidden = cfg.same_dim if cfg.architecture == "mmt" else cfg.hidden_size
        max_pos = cfg.max_position_embeddings - 1

        def full(value: int) -> torch.Tensor:
            return torch.full((batch, 1), value, dtype=torch.long, device=device)

        ids, types, positions, masks = [full(CLS_ID)], [full(0)], [full(0)], [full(1)]
        feats = [torch.zeros(batch, 1, hidden, dtype=dtype, device=device)]
        agg_positions, available, reduced, reduced_pool = [], [], {}, {}
        length = 1
        for expert in cfg.experts:
            name, idx = expert["name"], int(expert["idx"])
            x, mask = features[name], features_ind[name]
            n_tok = x.shape[1]
            reduce = self.video_dim_reduce[name]
            pooled = features_maxpool[name] if features_maxpool is not None else masked_max(x, mask)
            reduced[name] = reduce(x)
            reduced_pool[name] = reduce(pooled)
            has_any = mask.max(dim=1).values
            available.append(has_any)
            # the original clamps the float times, then truncates them to int64 (2.7 -> 2)
            times = torch.clamp(features_t[name], min=0, max=max_pos).long()
            agg_positions.append(length)
            ids += [full(AGG_ID), full(FEA_ID).expand(batch, n_tok)]
            types += [full(idx), full(idx).expand(batch, n_tok)]
            positions += [full(0), times]
            masks += [has_any.long()[:, None], mask.long()]
            feats += [reduced_pool[name][:, None], reduced[name]]
            length += 1 + n_tok
        return VideoTokens(
            input_ids=torch.cat(ids, 1),
            token_type_ids=torch.cat(types, 1),
            position_ids=torch.cat(positions, 1),
            attention_mask=torch.cat(masks, 1),
            features=torch.cat(feats, 1),
            agg_positions=agg_positions,
            available=torch.stack(available, 1).to(dtype),
            reduced_features=reduced,
            reduced_maxpool=reduced_pool,
        )

    def encode_video(
        self,
        features: dict[str, torch.Tensor],
        features_t: dict[str, torch.Tensor],
        features_ind: dict[str, torch.Tensor],
        features_maxpool: dict[str, torch.Tensor] | None = None,
    ) -> VideoOutput:
        """Per-expert unit-norm video embeddings (B, M, D) from collated expert features."""
        self._check_video_inputs(features, features_t, features_ind)
        tokens = self.video_tokens(features, features_t, features_ind, features_maxpool)
        with self.mixed_precision():
            last = self.vid_bert(tokens.features, tokens.token_type_ids, tokens.position_ids, tokens.attention_mask)
        last = last.float()
        outs = []
        last_name = self.config.experts[-1]["name"]
        for pos in tokens.agg_positions:
            emb = last[:, pos]
            if hasattr(self, "video_dim_reduce_out"):
                # The original indexes the output projection with a stale loop variable, so
                # every expert goes through the LAST expert's projection. Reproduced on purpose.
                emb = self.video_dim_reduce_out[last_name](emb)
            outs.append(F.normalize(emb, dim=-1))
        return VideoOutput(torch.stack(outs, 1), tokens.available, last, tokens)

    def apply_precision(self, precision: str) -> None:
        """bf16 weights in the two transformers' Linear layers; the expert projections, gated
        units, mixture weights and the similarity stay float32 (docs/operators/mdmmt.md)."""
        super().apply_precision(precision)
        if precision != "fp32":
            cast_matmul_weights(self.vid_bert.encoder, DTYPES[precision])
            cast_matmul_weights(self.txt_bert.encoder, DTYPES[precision])

    def _check_video_inputs(self, features, features_t, features_ind) -> None:
        for expert in self.config.experts:
            name = expert["name"]
            for what, d in (("features", features), ("features_t", features_t), ("features_ind", features_ind)):
                if name not in d:
                    raise InputError(f"{what} has no entry for expert {name!r} (give zeros for a missing expert)")
            if features[name].shape[-1] != int(expert["dim"]):
                raise InputError(
                    f"expert {name!r}: features have size {features[name].shape[-1]}, expected {expert['dim']}"
                )

    # -- text ----------------------------------------------------------------------------------
    def encode_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> TextOutput:
        """Per-expert unit-norm text embeddings (N, M, D) and the mixture weights (N, M)."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        with self.mixed_precision():
            last = self.txt_bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
            ).last_hidden_state.float()
        # token 0 ([CLS]) output, not the BERT pooler
        cls = last[:, 0]
        experts = torch.stack([self.text_gu[n](cls) for n in self.config.expert_names], 1)
        if self.config.architecture == "mmt":
            experts = F.normalize(experts, dim=-1)  # MMT normalises the (already unit) vectors again
        return TextOutput(experts, self.mixture_weights(cls), cls, last)

    def mixture_weights(self, cls: torch.Tensor) -> torch.Tensor:
        """Softmax over experts of one linear head per expert on the text CLS output."""
        cls = self.moe_txt_dropout(cls)
        logits = torch.cat([self.moe_fc_txt[n](cls) for n in self.config.expert_names], dim=-1)
        weights = F.softmax(logits, dim=1)
        if self.config.architecture == "mmt":
            weights = F.normalize(weights, p=1, dim=-1)
        return weights

    # -- scoring -------------------------------------------------------------------------------
    def video_weights(self, available: torch.Tensor) -> torch.Tensor:
        """MMT's per-video expert weights: uniform, missing experts zeroed unless kept."""
        weights = torch.ones_like(available)
        if not self.config.keep_missing_modalities:
            weights = weights * available
        return F.normalize(weights, p=1, dim=-1)

    def pair_weights(self, text_weights: torch.Tensor, video_available: torch.Tensor) -> torch.Tensor:
        """(N, B, M) expert weights of every caption/video pair (MMT)."""
        w = self.video_weights(video_available)[None] * text_weights[:, None]
        norm = w.sum(dim=2, keepdim=True)
        norm = torch.where(norm == 0, torch.full_like(norm, 1e-5), norm)
        return w / norm

    def similarity(
        self,
        text_experts: torch.Tensor,
        text_weights: torch.Tensor,
        video_experts: torch.Tensor,
        video_available: torch.Tensor,
    ) -> torch.Tensor:
        """(N, B) scores as the original computes them.

        MDMMT: dot product of the weighted, concatenated text vector with the concatenated video
        vector; a missing expert still contributes (its [AGG] output is a valid unit vector).
        MMT: sum over experts of the per-pair weights times the per-expert dot products.
        """
        if self.config.architecture == "mdmmt":
            text = (text_experts * text_weights[..., None]).flatten(1)
            return text @ video_experts.flatten(1).T
        weights = self.pair_weights(text_weights, video_available)
        sims = torch.zeros(text_experts.shape[0], video_experts.shape[0], dtype=text_experts.dtype, device=text_experts.device)
        for m in range(text_experts.shape[1]):
            sims = sims + weights[:, :, m] * (text_experts[:, m] @ video_experts[:, m].T)
        return sims


def average_caption_similarities(sims: torch.Tensor, captions_per_video: int) -> torch.Tensor:
    """MMT's training-time merge: (B*K, B) caption rows grouped per video -> mean over K."""
    rows, cols = sims.shape
    if rows % captions_per_video:
        raise ValueError(f"{rows} caption rows are not a multiple of captions_per_video={captions_per_video}")
    return sims.view(rows // captions_per_video, captions_per_video, cols).mean(dim=1)
