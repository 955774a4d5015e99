"""Release readers on small files written in each release's own layout (names, nesting, columns)."""

from __future__ import annotations

import json

import pytest

from vtzoo.datasets import DatasetError, load_dataset


def test_msrvtt(tmp_path, place_video):
    root = tmp_path / "msrvtt"
    for vid in ("video0", "video1", "video7010"):
        place_video(root / "MSRVTT" / "videos" / "all" / f"{vid}.mp4")  # Frozen in Time's MSRVTT.zip nesting
    sentences = [{"caption": f"{vid} sentence {k}", "video_id": vid, "sen_id": k}
                 for vid in ("video0", "video1", "video2", "video7010") for k in range(3)]
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "videos": [], "sentences": sentences}))
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\n")
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        ",key,vid_key,video_id,sentence\n0,ret0,msr7010,video7010,a man is talking\n")
    data = load_dataset(root)
    assert data.format == "msrvtt"
    assert [i.name for i in data.split("train")] == ["video0", "video1"]
    assert data.split("train")[0].captions == ["video0 sentence 0", "video0 sentence 1", "video0 sentence 2"]
    assert data.split("test")[0].captions == ["a man is talking"]  # 1k-A: its one sentence
    assert data.missing == ["video2"]


def test_didemo_paragraphs_and_segments(tmp_path, place_video):
    root = tmp_path / "didemo"
    place_video(root / "videos" / "12345@N00_678_abc.mp4")  # released name ends in .mov; downloads are mp4
    entry = lambda d, t: {"annotation_id": 0, "description": d, "video": "12345@N00_678_abc.mov", "times": t,  # noqa: E731
                          "dl_link": "http://example.invalid"}
    (root / "train_data.json").write_text(json.dumps([
        entry("the dog runs", [[1, 1], [1, 1], [1, 2], [0, 0]]), entry("a car appears", [[0, 0], [0, 0], [0, 0], [0, 1]]),
    ]))
    (root / "val_data.json").write_text("[]")
    (root / "test_data.json").write_text("[]")
    item = load_dataset(root).split("train")[0]
    assert item.captions == ["a car appears the dog runs"]  # the paragraph, in time order
    assert [(s.start, s.end, s.text) for s in item.segments] == [(0.0, 5.0, "a car appears"), (5.0, 10.0, "the dog runs")]


def test_youcook2(tmp_path, place_video):
    root = tmp_path / "yc2"
    place_video(root / "raw_videos" / "training" / "101" / "GLd3aX16zBg.mp4")
    place_video(root / "raw_videos" / "validation" / "113" / "xHr8X2Wpmno.webm")
    db = {
        "GLd3aX16zBg": {"duration": 241.6, "subset": "training", "recipe_type": "101", "video_url": "u",
                        "annotations": [{"segment": [90, 102], "id": 0, "sentence": "spread margarine"},
                                        {"segment": [114, 127], "id": 1, "sentence": "place a slice of cheese"}]},
        "xHr8X2Wpmno": {"duration": 100.0, "subset": "validation", "recipe_type": "113", "video_url": "u",
                        "annotations": [{"segment": [5, 9], "id": 0, "sentence": "cut the onion"}]},
        "testonly0000": {"duration": 50.0, "subset": "testing", "recipe_type": "113", "video_url": "u", "annotations": []},
    }
    (root / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    data = load_dataset(root)
    assert [i.name for i in data.split("train")] == ["GLd3aX16zBg"]
    assert [i.name for i in data.split("test")] == ["xHr8X2Wpmno"]
    assert data.split("train")[0].captions == ["spread margarine place a slice of cheese"]
    windows = data.segment_items("train")
    assert [(w.start, w.end, w.captions) for w in windows] == [(90, 102, ["spread margarine"]),
                                                                (114, 127, ["place a slice of cheese"])]


def test_activitynet(tmp_path, place_video):
    root = tmp_path / "anet"
    place_video(root / "v1-2" / "train" / "v_QOlSCBRmfWY.mp4")
    place_video(root / "v1-2" / "val" / "ehGHCYKzyZ8.mp4")  # saved without the v_ prefix
    (root / "train.json").write_text(json.dumps({"v_QOlSCBRmfWY": {
        "duration": 82.73, "timestamps": [[0.83, 19.86], [17.37, 60.81]], "sentences": ["A girl dances.", "She spins."]}}))
    (root / "val_1.json").write_text(json.dumps({"v_ehGHCYKzyZ8": {
        "duration": 61.7, "timestamps": [[0, 61.7]], "sentences": ["A man plays drums."]}}))
    data = load_dataset(root)
    assert data.split("train")[0].segments[1].text == "She spins."
    assert [i.name for i in data.split("val")] == [i.name for i in data.split("test")] == ["v_ehGHCYKzyZ8"]
    (root / "val_1.json").write_text(json.dumps({"v_x": {"timestamps": [[0, 1]], "sentences": []}}))
    with pytest.raises(DatasetError, match=r"val_1\.json: entry 'v_x': needs 'sentences' and as many 'timestamps'"):
        load_dataset(root)


def test_webvid(tmp_path, place_video):
    root = tmp_path / "webvid"
    place_video(root / "videos" / "000001_000050" / "1066692580.mp4")  # page_dir/videoid.mp4
    header = "videoid,contentUrl,duration,page_dir,name\n"
    (root / "results_2M_train.csv").write_text(
        header + '1066692580,https://x/1.mp4,PT00H00M20S,000001_000050,"Aerial shot of a lake, sunny"\n'
        '31353427,https://x/2.mp4,PT00H00M10S,000001_000050,Not downloaded\n')
    data = load_dataset(root)
    assert data.split("train")[0].captions == ["Aerial shot of a lake, sunny"]
    assert data.missing == ["000001_000050/31353427"]


def test_kinetics(tmp_path, place_video):
    root = tmp_path / "k400"
    place_video(root / "train" / "abseiling" / "-3B32lodo2M_000059_000069.mp4")
    place_video(root / "val" / "zumba" / "--07WQ2iBlw_000001_000011.mp4")
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (root / "train.csv").write_text(header + "abseiling,-3B32lodo2M,59,69,train,0\n")
    (root / "validate.csv").write_text(header + "zumba,--07WQ2iBlw,1,11,val,0\n")
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\n--33Lscn6sk,4,14,test\n")
    data = load_dataset(root)
    assert data.format == "kinetics"
    assert [(i.name, i.label) for i in data.split("train")] == [("-3B32lodo2M_000059_000069", "abseiling")]
    assert [i.label for i in data.split("test")] == ["zumba"]  # an unlabelled test.csv: validate scores
    assert data.labels == ["abseiling", "zumba"]
