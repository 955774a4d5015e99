"""Retrieval and classification metrics against small hand-computed cases."""

from __future__ import annotations

import json

import pytest
import torch

from vtzoo.pipelines.evaluation import (
    EvaluationError,
    label_accuracy,
    load_caption_dataset,
    retrieval_metrics,
    topk_accuracy,
)


def test_one_caption_per_video():
    # ranks of the right video for texts 0..2: 1 (0.9 best), 3 (0.2 and 0.8 beat 0.1), 2 (0.7 beats 0.3)
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8], [0.1, 0.7, 0.3]])
    m = retrieval_metrics(scores)
    assert m["t2v"] == {"R@1": pytest.approx(100 / 3), "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0}
    # columns: video 0 -> caption 0 first (rank 1); video 1: 0.1 ties caption 0's 0.1 and loses to 0.7 -> 3;
    # video 2: 0.3 loses to 0.8 -> 2
    assert m["v2t"]["R@1"] == pytest.approx(100 / 3) and m["v2t"]["MnR"] == 2.0


def test_several_captions_per_video_msrvtt_style():
    # 2 videos, captions 0,1 -> video 0 and caption 2 -> video 1
    scores = torch.tensor([[0.9, 0.5], [0.2, 0.6], [0.1, 0.8]])
    m = retrieval_metrics(scores, text_to_video=[0, 0, 1])
    # t2v ranks: 1, 2, 1
    assert m["t2v"]["R@1"] == pytest.approx(200 / 3) and m["t2v"]["MnR"] == pytest.approx(4 / 3)
    assert m["t2v"]["MdR"] == 1.0
    # v2t: video 0 column [0.9, 0.2, 0.1]: its best caption (0.9) ranks 1st; video 1 column [0.5, 0.6, 0.8]: 1st
    assert m["v2t"] == {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 1.0}


def test_videos_that_failed_count_as_misses():
    """Video 1 could not be embedded (its column holds no score): its caption is a miss in t2v
    and the video itself a miss in v2t; the metrics over the embedded part are given too."""
    x = float("nan")
    scores = torch.tensor([
        [0.9, x, 0.1],   # caption 0 -> video 0: rank 1 among videos 0 and 2
        [0.95, x, 0.0],  # caption 1 -> video 1 (failed): a miss
        [0.5, x, 0.4],   # caption 2 -> video 2: 0.5 beats it, rank 2
        [0.2, x, 0.3],   # caption 3 -> video 2: rank 1
    ])
    m = retrieval_metrics(scores, text_to_video=[0, 1, 2, 2], missing_videos=[1])
    # t2v ranks 1, miss, 2, 1: R@5 stays 75 (a miss is never a hit), the median is (1 + 2) / 2,
    # the mean rank is undefined
    assert m["t2v"] == {"R@1": 50.0, "R@5": 75.0, "R@10": 75.0, "MdR": 1.5, "MnR": None, "missed": 1}
    # v2t: video 0's caption (0.9) loses to caption 1 (0.95) -> 2; video 2's best (0.4) -> 1; video 1 missed
    assert m["v2t"] == {"R@1": pytest.approx(100 / 3), "R@5": pytest.approx(200 / 3), "R@10": pytest.approx(200 / 3),
                        "MdR": 2.0, "MnR": None, "missed": 1}
    # embedded only: captions 0, 2, 3 against videos 0 and 2 (caption 1 is left out entirely)
    assert m["embedded_only"]["t2v"] == {"R@1": pytest.approx(200 / 3), "R@5": 100.0, "R@10": 100.0, "MdR": 1.0,
                                         "MnR": pytest.approx(4 / 3)}
    assert m["embedded_only"]["v2t"]["R@1"] == 100.0


def test_ties_never_flatter_and_even_counts_take_the_middle_mean():
    m = retrieval_metrics(torch.zeros(4, 4))
    assert m["t2v"]["R@1"] == 0.0 and m["t2v"]["MdR"] == 4.0
    scores = torch.eye(4)
    scores[1] = torch.tensor([0.0, 0.5, 0.9, 0.0])  # text 1 ranks its video 2nd
    m = retrieval_metrics(scores)
    assert m["t2v"]["MdR"] == 1.0 and m["t2v"]["MnR"] == pytest.approx(5 / 4)


def test_topk_accuracy_from_logits_and_labels():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
    assert topk_accuracy(logits, [1, 2, 0], ks=(1, 2)) == {"top1": pytest.approx(100 / 3), "top2": pytest.approx(100 / 3)}
    assert label_accuracy([["a", "b"], ["c", "a"]], ["a", "a"], ks=(1, 2)) == {"top1": 50.0, "top2": 100.0}


def test_bad_inputs_are_explained():
    with pytest.raises(EvaluationError, match="non-square"):
        retrieval_metrics(torch.zeros(2, 3))
    with pytest.raises(EvaluationError, match="video index 5"):
        retrieval_metrics(torch.zeros(2, 3), text_to_video=[0, 5])
    with pytest.raises(EvaluationError, match="video 1 has no caption"):
        retrieval_metrics(torch.zeros(2, 2), text_to_video=[0, 0])


def test_caption_datasets_in_json_and_csv(tmp_path):
    (tmp_path / "videos").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "videos" / name).write_bytes(b"x")
    (tmp_path / "captions.json").write_text(json.dumps({"a.mp4": ["a cat", "a kitten"], "b.mp4": "a dog"}))
    data = load_caption_dataset(tmp_path)
    assert [v.name for v in data.videos] == ["a.mp4", "b.mp4"]
    assert data.captions == ["a cat", "a kitten", "a dog"] and data.caption_video == [0, 0, 1]

    (tmp_path / "captions.json").unlink()
    (tmp_path / "captions.csv").write_text("video,caption\nb.mp4,a dog\na.mp4,a cat\nmissing.mp4,nothing\n")
    with pytest.raises(EvaluationError, match="'missing.mp4'"):
        load_caption_dataset(tmp_path)
