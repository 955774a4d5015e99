"""COOT training: the original's contrastive losses plus cross-modal cycle consistency.

:class:`~vtzoo.operators.coot.losses.CootLoss` with the config's weights (margin 0.2 on the
video-paragraph, clip-sentence and context pairs, their intra-modal clustering terms, and
``loss_cycle_cons`` x the clip/sentence cycle consistency). Inputs are features computed once
(``family.features``): the video's per-step features cut into clips at its annotated segments
(``segments.json``; a video without segments is one clip), and the paragraph of the segments'
sentences through the operator's text model (BERT's last two layers, as ``precompute_text.py``).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Sequence

import torch

from vtzoo.training.family import TrainingFamily
from vtzoo.training.features import FeatureFamily, FeatureSpec, TensorStore

LEVEL_FIELDS = ("high", "low", "context", "low_padded", "low_mask", "low_lengths")
_TEXT_STORES: "weakref.WeakKeyDictionary[Any, TensorStore]" = weakref.WeakKeyDictionary()


@dataclass
class CootSettings:
    features: FeatureSpec = field(default_factory=lambda: FeatureSpec(extractor="operator"))


def paragraph(item: Any) -> list[str]:
    return [s.text for s in item.segments] if item.segments else list(item.captions[:1])


class CootTraining(FeatureFamily, TrainingFamily):
    Settings = CootSettings

    def operator_features(self, op, item) -> torch.Tensor:
        return op.video_features(str(item.path)).features

    def prepare(self, run) -> None:
        super().prepare(run)
        items = [*run.train_items, *run.val_items, *run.test_items]
        store = self.text_store(run.op)
        failed = store.fill({self.text_key(i): paragraph(i) for i in items}, lambda sentences: self._text(run.op, sentences),
                            "paragraph features", run.args.progress)
        if failed:
            raise ValueError(f"COOT text features failed: {next(iter(failed.values()))}")

    # -- text features (the operator's BERT, computed once) ---------------------------------------
    @staticmethod
    def text_store(op) -> TensorStore:
        """The cache of this operator's text model (named by its config and a checksum of its weights)."""
        if op not in _TEXT_STORES:
            bert = op.text_encoder.bert  # the operator's text model
            checksum = sum(float(p.double().sum()) for p in bert.parameters())
            name = hashlib.sha256(json.dumps([bert.config.to_json_string(), checksum]).encode()).hexdigest()[:16]
            _TEXT_STORES[op] = TensorStore(f"coot-text-{name}")
        return _TEXT_STORES[op]

    @staticmethod
    def text_key(item) -> str:
        return json.dumps(paragraph(item))

    @staticmethod
    def _text(op, sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        out = op.text_features(list(sentences))
        return {"features": out.features, "sentence_lengths": torch.tensor(out.sentence_lengths)}

    def text_features(self, op, item):
        from vtzoo.operators.coot.inputs import CootTextFeatures

        stored = self.text_store(op).get(self.text_key(item), f"paragraph of {item.key}")
        return CootTextFeatures(stored["features"], stored["sentence_lengths"].tolist())

    # -- data -------------------------------------------------------------------------------------
    def load(self, op, sample, settings: CootSettings, train, rng) -> dict[str, Any]:
        from vtzoo.operators.coot.inputs import CootVideoFeatures

        item, cfg = sample.item, op.config
        stored = self.video_features(settings, item)
        segments = [(s.start, s.end) for s in item.segments] or [(0.0, float(stored["duration"]))]
        video = CootVideoFeatures.from_seconds(stored["features"], float(stored["duration"]), segments,
                                               cfg.add_stop_frame, cfg.expand_segments)
        return {"video": video, "text": self.text_features(op, item)}

    def encode(self, op, batch, settings) -> dict[str, torch.Tensor]:
        from vtzoo.operators.coot.inputs import text_batch, video_batch

        cfg = op.config
        videos = video_batch(batch["video"], cfg.video_feature_dim, cfg.max_frames, op.max_clips)
        texts = text_batch(batch["text"], cfg.text_feature_dim, op.max_clips)
        video = op.model.encode_video(**{k: v.to(op.device) for k, v in videos.items()})
        text = op.model.encode_text(**{k: v.to(op.device) for k, v in texts.items()})
        return {**{f"v_{k}": getattr(video, k) for k in LEVEL_FIELDS}, **{f"t_{k}": getattr(text, k) for k in LEVEL_FIELDS}}

    def merge(self, parts) -> dict[str, torch.Tensor]:
        out = {}
        for key in parts[0]:
            tensors = [p[key] for p in parts]
            if key.endswith("low_padded") or key.endswith("low_mask"):
                width = max(t.shape[1] for t in tensors)
                fill = key.endswith("low_mask")  # True = padding
                tensors = [torch.cat([t, t.new_full((t.shape[0], width - t.shape[1], *t.shape[2:]), fill)], 1)
                           for t in tensors]
            out[key] = torch.cat(tensors)
        return out

    def loss(self, op, encoded, settings) -> torch.Tensor:
        from vtzoo.operators.coot.losses import CootLoss

        video = SimpleNamespace(**{k: encoded[f"v_{k}"] for k in LEVEL_FIELDS})
        text = SimpleNamespace(**{k: encoded[f"t_{k}"] for k in LEVEL_FIELDS})
        return CootLoss.from_config(op.config)(video, text)["total"]

    # -- evaluation: video-paragraph retrieval ------------------------------------------------------
    def video_input(self, op, batch) -> Any:
        return batch["video"]

    def eval_texts(self, item) -> list[Any]:
        return [item]  # one paragraph per video; embedded from the cached features below

    def embed_text(self, op, items) -> Any:
        return op.embed_text([self.text_features(op, item) for item in items])


FAMILY = CootTraining()
