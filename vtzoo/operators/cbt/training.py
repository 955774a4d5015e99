"""CBT training: the contrastive pre-training, and a linear probe on the frozen model's features.

Pre-training (``objective: pretrain``): clip features come from the feature cache
(``family.features``) and are written into the model's config (``clip_features``), so the trained
folder embeds raw video with the same extraction. Every sample is a run of at most ``max_clips``
clips of one video (a random one in training) and one of its captions (the "speech"):

* visual: ``mask_probability`` of the clips (at least one) are replaced by the mask embedding and
  predicted; :func:`~vtzoo.operators.cbt.losses.nce_visual_loss` scores each prediction against
  every real clip of the batch;
* text: BERT's masked-word loss (15 %, 80/10/10) on the caption;
* cross-modal: the MI score of every (video, caption) pair of the (global) batch from the two
  towers' states, a softmax over the batch's captions for each video
  (:func:`~vtzoo.operators.cbt.losses.cross_modal_loss`);
* ``L = bert_weight L_bert + visual_weight L_visual + cross_weight L_cross`` (the config's weights).

The three losses share one forward pass of the masked inputs (chosen: the paper does not say
whether the cross-modal term sees masked inputs). Validation and test are text-to-video retrieval
through the operator's ``similarity`` (the MI score).

Linear probe (``objective: linear-probe``, recipe ``linear-probe``): the model (``--weights``, a
trained folder, or ``random`` for the baseline) is frozen; a linear layer on its pooled clip states
(``op.embed_video(...).pooled``, what ``classify`` reads) is trained with cross-entropy on the
dataset's labels, which become the config's ``labels``. Features: the model's own extraction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vtzoo.errors import ConfigError
from vtzoo.operators.cbt.losses import cross_modal_loss, nce_visual_loss, total_loss
from vtzoo.operators.videobert.pretraining import IGNORE, mask_tokens
from vtzoo.operators.videobert.training import paper_features
from vtzoo.training.data import pick_caption
from vtzoo.training.family import CLASSIFICATION, TrainingFamily
from vtzoo.training.features import FeatureFamily, FeatureSpec

OBJECTIVES = ("pretrain", "linear-probe")


@dataclass
class CbtSettings:
    features: FeatureSpec = field(default_factory=paper_features)
    objective: str = "pretrain"
    text_mask_probability: float = 0.15

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"family.objective {self.objective!r} is not one of {', '.join(OBJECTIVES)}")


class CbtFeatures(FeatureFamily):
    """Clip features from the cache, cut to the model's ``max_clips``."""

    Settings = CbtSettings

    def operator_features(self, op, item) -> torch.Tensor:
        return op.clips(str(item.path), str(item.path))[0]

    def use_features(self, run) -> None:
        """Name the recipe's extraction in the model's config (its own for ``operator``)."""
        spec, op = run.base_settings.features, run.op
        if spec.extractor == "operator":
            spec.key = spec.key or op.clips.extractor_id
            return
        if spec.dim != op.config.feature_dim:
            raise ConfigError(f"recipe: config.feature_dim is {op.config.feature_dim}, but family.features "
                              f"({spec.extractor}) gives {spec.dim}-d features: set config.feature_dim: {spec.dim}")
        op.use_clip_features(asdict(spec))

    def clips_of(self, op, settings, item, rng: np.random.Generator | None) -> torch.Tensor:
        """At most ``max_clips`` consecutive clips: from a random start with ``rng``, else the first."""
        features = self.video_features(settings, item)["features"]
        limit = op.config.max_clips
        start = int(rng.integers(features.shape[0] - limit + 1)) if rng is not None and features.shape[0] > limit else 0
        return features[start : start + limit]

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {key: [s[key] for s in samples] for key in samples[0]}

    def video_input(self, op, batch) -> Any:
        return batch["features"]


class CbtPretraining(CbtFeatures, TrainingFamily):
    def for_settings(self, settings: CbtSettings) -> TrainingFamily:
        return LINEAR_PROBE if settings.objective == "linear-probe" else self

    def prepare(self, run) -> None:
        self.use_features(run)
        super().prepare(run)

    def load(self, op, sample, settings: CbtSettings, train, rng) -> dict[str, Any]:
        features = self.clips_of(op, settings, sample.item, rng if train else None)
        masked = torch.from_numpy(rng.random(features.shape[0]) < op.config.mask_probability)
        if not masked.any():
            masked[int(rng.integers(features.shape[0]))] = True
        return {"features": features, "masked": masked, "caption": pick_caption(sample, rng),
                "mask_seed": int(rng.integers(2**62))}

    def encode(self, op, batch, settings: CbtSettings) -> dict[str, torch.Tensor]:
        model, device = op.model, op.device
        features, clip_mask, masked = _padded_clips(batch["features"], batch["masked"], op.config.feature_dim)
        features, clip_mask, masked = features.to(device), clip_mask.to(device), masked.to(device)
        hidden = model.encode_video(features, clip_mask, masked)
        ids, text_mask = op.tokenize(batch["caption"])
        ids, labels = _mask_text(op, ids, text_mask, batch["mask_seed"], settings.text_mask_probability)
        text_hidden, logits = model.encode_text(ids.to(device), text_mask.to(device))
        keep = labels.to(device) != IGNORE
        return {"features": features, "clip_mask": clip_mask, "masked": masked, "video": hidden,
                "predictions": model.predict_features(hidden), "text": text_hidden, "text_mask": text_mask.to(device),
                "mlm_logits": logits[keep], "mlm_targets": labels.to(device)[keep]}

    def loss(self, op, encoded, settings: CbtSettings) -> dict[str, torch.Tensor]:
        visual = nce_visual_loss(encoded["features"], encoded["predictions"], encoded["clip_mask"], encoded["masked"])
        bert = F.cross_entropy(encoded["mlm_logits"].float(), encoded["mlm_targets"]) if encoded["mlm_targets"].numel() \
            else encoded["mlm_logits"].sum() * 0.0
        cross = cross_modal_loss(pair_scores(op.model, encoded["video"], encoded["clip_mask"], encoded["text"],
                                             encoded["text_mask"]))
        return {"loss": total_loss(bert, visual, cross, op.config), "bert": bert, "visual": visual, "cross": cross}


class CbtLinearProbe(CbtFeatures, TrainingFamily):
    task = CLASSIFICATION
    cross_batch = False

    def prepare(self, run) -> None:
        self.use_features(run)
        super().prepare(run)
        run.op.model.add_probe(run.labels, seed=run.seed)

    def parameters(self, op) -> list[tuple[str, torch.nn.Parameter]]:
        return [(f"probe.{name}", p) for name, p in op.model.probe.named_parameters()]

    def trained_modules(self, op) -> list[torch.nn.Module]:
        return [op.model.probe]  # the rest stays in eval mode: frozen features, no dropout

    def load(self, op, sample, settings: CbtSettings, train, rng) -> dict[str, Any]:
        return {"features": self.clips_of(op, settings, sample.item, None), "label": sample.item.label}

    def encode(self, op, batch, settings: CbtSettings) -> dict[str, torch.Tensor]:
        pooled = op.embed_video(batch["features"]).pooled.clone()  # computed without a graph: frozen
        return {"logits": op.model.probe(pooled.to(op.device)), "target": batch["target"]}

    def loss(self, op, encoded, settings: CbtSettings) -> torch.Tensor:
        return F.cross_entropy(encoded["logits"].float(), encoded["target"])

    def predict(self, op, batch, labels) -> list[list[int]]:
        index = {label: i for i, label in enumerate(labels)}
        return [[index[name] for name, _ in row] for row in op.classify(batch["features"], top_k=len(labels))]


def pair_scores(model, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor) -> torch.Tensor:
    """(B, B) s(video i, text j) of every pair of the batch."""
    count = video.shape[0]
    v_index = torch.arange(count, device=video.device).repeat_interleave(count)
    t_index = torch.arange(count, device=video.device).repeat(count)
    return model.cross_scores(video[v_index], video_mask[v_index], text[t_index], text_mask[t_index]).view(count, count)


def _padded_clips(features: list[torch.Tensor], masked: list[torch.Tensor], dim: int):
    length = max(f.shape[0] for f in features)
    batch = torch.zeros(len(features), length, dim)
    clip_mask = torch.zeros(len(features), length, dtype=torch.long)
    chosen = torch.zeros(len(features), length, dtype=torch.bool)
    for row, (f, m) in enumerate(zip(features, masked)):
        batch[row, : f.shape[0]], clip_mask[row, : f.shape[0]], chosen[row, : f.shape[0]] = f, 1, m
    return batch, clip_mask, chosen


def _mask_text(op, ids: torch.Tensor, attention: torch.Tensor, seeds: list[int], probability: float):
    """BERT masking of the real word pieces (not [CLS], [SEP] or padding), one generator per row."""
    tokenizer = op.tokenizer
    specials = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id])
    maskable = attention.bool() & ~torch.isin(ids, specials)
    rows, labels = [], []
    for row, seed in enumerate(seeds):
        out = mask_tokens(ids[row : row + 1], maskable[row : row + 1], tokenizer.mask_token_id, 0,
                          op.config.text_vocab_size, torch.Generator().manual_seed(seed), probability)
        rows.append(out.input_ids)
        labels.append(out.labels)
    return torch.cat(rows), torch.cat(labels)


LINEAR_PROBE = CbtLinearProbe()
FAMILY = CbtPretraining()
