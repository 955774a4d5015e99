"""Micro versions of every family's synthetic-tiny recipe, and a micro dataset to train them on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vtzoo.datasets.synthetic import make_synthetic

MICRO_CLIP = {"embed_dim": 32, "image_resolution": 32, "vision_layers": 1, "vision_width": 32, "vision_patch_size": 16,
              "vision_heads": 1, "transformer_width": 32, "transformer_heads": 1, "transformer_layers": 1}
# recipe overrides that make each family's synthetic-tiny model a few thousand parameters wide
MICRO_CONFIG = {
    "clip4clip": {"config.clip": MICRO_CLIP, "config.cross_hidden_size": 32, "config.cross_num_attention_heads": 1,
                  "config.max_frames": 2, "config.max_words": 16},
    "drl": {"config.clip": MICRO_CLIP, "config.max_frames": 2, "config.max_words": 16},
    "frozen_in_time": {"config.img_size": 32, "config.embed_dim": 32, "config.num_heads": 1, "config.depth": 1,
                       "config.text_dim": 32, "config.text_layers": 1, "config.text_heads": 1,
                       "config.text_hidden_dim": 64, "config.projection_dim": 32, "config.num_frames": 2,
                       "options.preprocessing": {"resize": 32, "crop": 32, "resize_after_crop": None},
                       "family.curriculum": [{"frames": 1, "epochs": 1}, {"frames": 2}], "optimizer.lr": 1e-3},
    "movinet": {"options.preprocessing": {"frames": 8, "fps": None, "resize": 32, "crop": 32}},
    "coot": {"config.hidden_dim": 32, "config.num_heads": 1, "config.video_feature_dim": 48,
             "family.features": {"extractor": "thumbnails", "fps": 4, "size": 4}},
    "videoclip": {"config.hidden_size": 32, "config.num_attention_heads": 1, "config.intermediate_size": 64,
                  "config.text_num_hidden_layers": 1, "config.video_num_hidden_layers": 1, "config.video_input_dim": 48,
                  "config.max_video_len": 16, "config.max_len": 40,
                  "family.features": {"extractor": "thumbnails", "fps": 4, "size": 4}},
    "mdmmt": {"config.experts": [{"name": "thumbnails", "dim": 48, "idx": 1, "max_tok": 16}], "config.same_dim": 32,
              "config.hidden_size": 32, "config.num_hidden_layers": 1, "config.num_attention_heads": 1,
              "config.intermediate_size": 64, "config.hidden_dropout_prob": 0.0, "config.attention_probs_dropout_prob": 0.0,
              "config.text_bert": {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 1,
                                   "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2,
                                   "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
              "family.features": {"extractor": "thumbnails", "fps": 4, "size": 4},
              # every similarity starts equal, where the hinge is flat: MDMMT needs more steps to get going
              "train.epochs": 20, "optimizer.lr": 1e-3},
}


def _micro_overrides(family: str, **extra) -> dict:
    out = {"train.epochs": 6, "train.batch_size": 4, "train.global_batch": 4,
           "train.precision": "fp32", "train.eval_every": 3, "train.early_stopping": None,
           "train.checkpoint_every": 2, "data.num_workers": 0, "schedule.name": "constant", "schedule.warmup": 0.0,
           "optimizer.lr": 3e-3, **MICRO_CONFIG[family]}
    out.update(extra)
    return out


@pytest.fixture(scope="session")
def micro_overrides():
    """``micro_overrides(family, **more)``: recipe overrides for a few steps on one batch of a
    micro model (fp32 so runs are bit-stable, no worker processes, a constant learning rate)."""
    return _micro_overrides


@pytest.fixture(scope="session")
def micro_dataset(tmp_path_factory) -> Path:
    """10 short videos, one caption each; 4 labelled single-event videos train, 2 validate, 2 test
    (multi-event videos are spread so every split has segments of both kinds)."""
    root = make_synthetic(tmp_path_factory.mktemp("micro"), count=12, size=32, frames=8, fps=4,
                          captions_per_video=1, multi_event=0.3, seed=5)
    labels = json.loads((root / "labels.json").read_text())
    single = sorted(labels)
    multi = sorted(set(json.loads((root / "captions.json").read_text())) - set(single))
    splits = {"train": single[:4], "val": single[4:6], "test": single[6:8] + multi[:1]}
    (root / "splits.json").write_text(json.dumps(splits))
    return root
