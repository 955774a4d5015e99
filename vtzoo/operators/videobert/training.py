"""VideoBERT pre-training: the paper's three regimes on a video's speech and its visual words.

* Clip features come from the feature cache (``family.features``: S3D clips as the paper, or
  thumbnails where no pretrained network is at hand). Before the first epoch the visual vocabulary
  (hierarchical k-means, the config's ``branching`` ^ ``levels`` words) is fitted on the training
  split's features and installed in the model, and the extraction is written into the model's
  config (``clip_features``, ``vocabulary_extractor``), so the trained folder turns raw video into
  the same visual words.
* The speech of a video is its timed sentences (``segments.json``); a sample is one sentence,
  joined with 0..``max_neighbours`` following ones at random (the paper's neighbouring-sentence
  augmentation), with the visual words of the clips they span. A video with fewer than two
  sentences is spoken by one caption, drawn at random, over the whole video. The visual words are
  kept every r-th, r drawn from 1..``max_subsample`` (the paper's subsampling).
* Every sample gives one row per regime: text only (``[CLS] text [SEP]``, text cloze), video only
  (``[CLS] [>] words [SEP]``, video cloze over the visual vocabulary), and text-video
  (``[CLS] text [>] words [SEP]``, cloze on both halves + the alignment classifier from
  ``[CLS]``); with probability ``negative_rate`` the text-video row takes the words of another video
  of the batch (a negative: no cloze on it, label "not aligned"). Masking is BERT's (15 %, 80/10/10).
  The losses are summed with equal weights (the paper gives none) unless ``alignment_weight`` says otherwise.

Evaluation is text-to-video retrieval through the operator: ``similarity`` is the alignment
probability of every (caption, video) pair, a cross-encoder (one forward pass per pair), so each
video's first caption is its query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch

from vtzoo.errors import ConfigError
from vtzoo.operators.videobert.inputs import collate, layout
from vtzoo.operators.videobert.pretraining import (
    IGNORE,
    REGIMES,
    TEXT_VIDEO,
    mask_sequence,
    neighbour_span,
    pretraining_losses,
    pretraining_outputs,
    subsample_words,
)
from vtzoo.training.data import pick_caption
from vtzoo.training.family import TrainingFamily
from vtzoo.training.features import FeatureFamily, FeatureSpec, FeatureStore, window


def paper_features() -> FeatureSpec:
    """The paper's clips: S3D ``mixed_5c`` of 30 frames at 20 fps, average-pooled, not normalised."""
    return FeatureSpec(extractor="s3d", fps=20.0, window_frames=30, output="mixed_5c", l2_normalize=False)


@dataclass
class VideoBertSettings:
    features: FeatureSpec = field(default_factory=paper_features)
    regimes: list[str] = field(default_factory=lambda: ["text", "video", "text-video"])
    mask_probability: float = 0.15
    negative_rate: float = 0.5  # text-video rows paired with another video's words
    max_neighbours: int = 2  # following sentences joined to a sentence: 0..max_neighbours
    max_subsample: int = 5  # visual words kept every r-th, r in 1..max_subsample
    kmeans_iterations: int = 25  # Lloyd iterations per node of the vocabulary tree
    # the alignment loss's weight in the sum (the paper gives no weights: 1 = equal). From scratch the
    # [CLS] classifier sits at chance for long while the cloze terms dominate the gradient
    alignment_weight: float = 1.0

    def __post_init__(self) -> None:
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown or not self.regimes:
            raise ConfigError(f"family.regimes {self.regimes!r}: choose from {', '.join(REGIMES)}")
        if not 0.0 <= self.negative_rate <= 1.0 or not 0.0 < self.mask_probability < 1.0:
            raise ConfigError("family.negative_rate must be in [0, 1] and family.mask_probability in (0, 1)")
        if self.alignment_weight < 0:
            raise ConfigError("family.alignment_weight must be >= 0")
        if self.max_subsample < 1 or self.max_neighbours < 0:
            raise ConfigError("family.max_subsample must be >= 1 and family.max_neighbours >= 0")


def torch_generator(rng) -> torch.Generator:
    """A torch generator drawn from an item's numpy generator (the item's random choices stay
    a function of (seed, epoch, position))."""
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


class VideoBertTraining(FeatureFamily, TrainingFamily):
    Settings = VideoBertSettings
    cross_batch = False  # every loss is per row; negatives are drawn inside the micro-batch

    def operator_features(self, op, item) -> torch.Tensor:
        return op.clip_features(str(item.path))[0]

    # -- set-up: features, then the visual vocabulary -----------------------------------------------
    def prepare(self, run) -> None:
        from vtzoo.operators.videobert.visual_words import fit_vocabulary

        spec, op = run.base_settings.features, run.op
        if spec.extractor == "operator":  # the operator's own extraction (the paper's S3D clips)
            spec.key = spec.key or op.clips.extractor_id
        else:
            if spec.dim != op.config.feature_dim:
                raise ConfigError(f"recipe: config.feature_dim is {op.config.feature_dim}, but family.features "
                                  f"({spec.extractor}) gives {spec.dim}-d features: set config.feature_dim: {spec.dim}")
            op.use_clip_features(asdict(spec))
        super().prepare(run)
        store = FeatureStore(spec)
        videos = {item.name: item for item in run.train_items if item.key not in run.failed}
        features = [store.features(item)["features"] for item in videos.values()]
        extractor = op.clips.extractor_id
        cfg = op.config
        vocabulary = fit_vocabulary(torch.cat(features), cfg.branching, cfg.levels, run.settings_for_epoch(0).kmeans_iterations,
                                    seed=run.seed, extractor=extractor)
        op.model.set_vocabulary(vocabulary)
        cfg.vocabulary_extractor = extractor

    # -- data ------------------------------------------------------------------------------------
    def load(self, op, sample, settings: VideoBertSettings, train, rng) -> dict[str, Any]:
        item = sample.item
        if not train:
            return {"features": self.video_features(settings, item)["features"], "caption": pick_caption(sample, rng)}
        generator = torch_generator(rng)
        stored = self.video_features(settings, item)
        if len(item.segments) > 1:  # timed sentences: one, with its following neighbours, and their clips
            first, last = neighbour_span(len(item.segments), int(rng.integers(len(item.segments))), generator,
                                         settings.max_neighbours)
            spoken = item.segments[first : last + 1]
            text = " ".join(s.text for s in spoken)
            stored = window(stored, spoken[0].start, spoken[-1].end)
        else:
            text = pick_caption(sample, rng)
        words = op.model.vocabulary.tokenize(stored["features"]).tolist()
        return {
            "text": text,
            "words": subsample_words(words, generator, settings.max_subsample),
            "negative": bool(rng.random() < settings.negative_rate),
            "partner": int(rng.integers(1 << 30)),
            "mask_seed": int(rng.integers(2**62)),
        }

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {key: [s[key] for s in samples] for key in samples[0]}

    # -- training ----------------------------------------------------------------------------------
    def rows(self, op, batch, settings: VideoBertSettings) -> dict[str, torch.Tensor]:
        """The batch's input rows: one per sample and regime, masked, with labels."""
        cfg, special = op.config, op.special
        texts = op.text_ids(batch["text"])
        sequences, text_labels, video_labels, regimes, aligned = [], [], [], [], []
        count = len(texts)
        for i, (text, words) in enumerate(zip(texts, batch["words"])):
            generator = torch.Generator().manual_seed(batch["mask_seed"][i])
            negative = batch["negative"][i] and count > 1
            partner = (i + 1 + batch["partner"][i] % (count - 1)) % count if negative else i
            for name in settings.regimes:
                regime = REGIMES[name]
                seq = layout(text if name != "video" else None, None if name == "text" else
                             (words if regime != TEXT_VIDEO else batch["words"][partner]), cfg, special)
                ids, t_labels, v_labels = mask_sequence(seq, cfg, special, generator, settings.mask_probability)
                if regime == TEXT_VIDEO and negative:  # masked like the others (no tell), but not a cloze
                    t_labels, v_labels = [IGNORE] * len(ids), [IGNORE] * len(ids)
                seq.ids = ids
                sequences.append(seq)
                text_labels.append(t_labels)
                video_labels.append(v_labels)
                regimes.append(regime)
                aligned.append(not negative)
        rows = collate(sequences, special.pad)
        length = rows["input_ids"].shape[1]
        rows["text_labels"] = _padded(text_labels, length)
        rows["video_labels"] = _padded(video_labels, length)
        rows["regime"] = torch.tensor(regimes)
        rows["aligned"] = torch.tensor(aligned)
        return {k: v.to(op.device) for k, v in rows.items()}

    def encode(self, op, batch, settings: VideoBertSettings) -> dict[str, torch.Tensor]:
        return pretraining_outputs(op.model, self.rows(op, batch, settings))

    def loss(self, op, encoded, settings: VideoBertSettings) -> dict[str, torch.Tensor]:
        return pretraining_losses(encoded, settings.alignment_weight)

    # -- evaluation --------------------------------------------------------------------------------
    def video_input(self, op, batch) -> Any:
        return batch["features"]

    def eval_texts(self, item) -> list[Any]:
        return list(item.captions[:1])  # a cross-encoder runs once per (caption, video) pair


def _padded(rows: list[list[int]], length: int) -> torch.Tensor:
    out = torch.full((len(rows), length), IGNORE, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


FAMILY = VideoBertTraining()
