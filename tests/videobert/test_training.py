"""VideoBERT through `vtzoo train`: a few steps lower the loss, a stopped run resumes, and the
trained folder loads through vtzoo.create and turns raw video into the visual words it learnt."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import vtzoo
from vtzoo.errors import ConfigError
from vtzoo.operators.videobert.pretraining import IGNORE
from vtzoo.training.features import FeatureSpec, FeatureStore

FEATURES = {"extractor": "thumbnails", "fps": 4.0, "size": 4, "centre": True, "position_weight": 4.0}


def micro(**extra):
    """synthetic-tiny shrunk to a few thousand weights: one step per epoch on 4 videos."""
    return {"config.hidden_size": 32, "config.num_hidden_layers": 1, "config.num_attention_heads": 2,
            "config.intermediate_size": 64, "config.max_position_embeddings": 64, "config.max_text_tokens": 24,
            "config.max_video_tokens": 16, "config.branching": 3, "config.levels": 2, "config.feature_dim": 50,
            "family.features": FEATURES, "train.epochs": 6, "train.batch_size": 4, "train.global_batch": 4,
            "train.eval_every": 3, "train.checkpoint_every": 2, "data.num_workers": 0, "optimizer.lr": 3e-3,
            "schedule.name": "constant", "schedule.warmup": 0.0, **extra}


def steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_videobert_trains_resumes_and_reloads(speech_dataset, bert_vocab, tmp_path):
    out = tmp_path / "videobert"
    vtzoo.train("videobert", speech_dataset, out, overrides=micro(**{"train.epochs": 3}), progress=False)
    assert [s["step"] for s in steps(out)] == [1, 2, 3]
    final = vtzoo.train("videobert", speech_dataset, out, overrides=micro(), resume=True, progress=False)
    log = steps(out)
    assert [s["step"] for s in log] == [1, 2, 3, 4, 5, 6]  # resumed at step 4, not from scratch
    losses = [s["loss"] for s in log]
    assert sum(losses[-2:]) < sum(losses[:2]), losses
    assert {"t2v_r1", "t2v_r5", "v2t_r1"} <= set(final)

    op = vtzoo.create("videobert", weights=str(out), tokenizer=bert_vocab, precision="fp32")
    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(op.model.state_dict()[k], v) for k, v in saved.items())
    assert op.config.clip_features["extractor"] == "thumbnails" and op.config.clip_features["centre"] is True
    assert op.config.vocabulary_extractor == op.clips.extractor_id
    # a raw video becomes the words of the features the vocabulary was fitted on
    item = speech_dataset / "videos" / json.loads((speech_dataset / "splits.json").read_text())["test"][0]
    cached = FeatureStore(FeatureSpec(**FEATURES)).features(type("Item", (), {"path": item})())["features"]
    embedded = op.embed_video(str(item))
    assert embedded.extras["visual_words"][0] == op.model.vocabulary.tokenize(cached).tolist()
    # the fitted vocabulary is not the random initial tree: its leaves are feature-space centroids
    assert op.model.vocabulary_level_1.shape == (9, 50) and float(op.model.vocabulary_level_1[:, -2:].abs().max()) <= 2.0


def test_features_of_another_size_than_the_model_are_refused_before_training(speech_dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"feature_dim is 1024.*50-d"):
        vtzoo.train("videobert", speech_dataset, tmp_path / "bad", overrides=micro(**{"config.feature_dim": 1024}),
                    progress=False)
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_rows_of_a_batch_follow_the_three_regimes(bert_vocab):
    from vtzoo.operators.videobert.operator import VideoBertOperator
    from vtzoo.operators.videobert.pretraining import TEXT, TEXT_VIDEO, VIDEO
    from vtzoo.operators.videobert.training import FAMILY, VideoBertSettings

    op = vtzoo.create("videobert", weights="random", precision="fp32", tokenizer=bert_vocab,
                      **VideoBertOperator.tiny_config(None))
    batch = {"text": ["push the square", "raise the ball"], "words": [[0, 1, 2, 3], [5, 6, 7]],
             "negative": [True, False], "partner": [0, 0], "mask_seed": [1, 2]}
    rows = FAMILY.rows(op, batch, VideoBertSettings())
    assert rows["regime"].tolist() == [TEXT, VIDEO, TEXT_VIDEO] * 2
    join, sep = op.config.join_token_id, op.special.sep
    video_length = lambda row: ids[row].tolist().index(sep) - ids[row].tolist().index(join) - 1
    ids = rows["input_ids"]
    # the first sample's text-video row is a negative: the other video's 3 words, no cloze, not aligned
    assert video_length(2) == 3 and video_length(1) == 4 and not rows["aligned"][2]
    assert (rows["text_labels"][2] == IGNORE).all() and (rows["video_labels"][2] == IGNORE).all()
    assert bool(rows["aligned"][5]) and ((rows["text_labels"][5] != IGNORE).any() or (rows["video_labels"][5] != IGNORE).any())
    assert (rows["video_labels"][0] == IGNORE).all() and (rows["text_labels"][1] == IGNORE).all()
    assert join not in ids[0].tolist() and join in ids[1].tolist()
