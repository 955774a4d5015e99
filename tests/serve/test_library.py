"""The query side of the page: text search, filters, caps, "more like this", and the index checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vtzoo.pipelines.index import VectorIndex
from vtzoo.serve.library import MAX_HITS, Filters, IndexMismatch, Library

COLLECTION = "clip4clip__vit_b32_zeroshot"


@pytest.fixture(scope="module")
def library(demo_index, kit) -> Library:
    return Library(kit.query_pipeline(demo_index))


def names(ranking) -> list[str]:
    return [Path(h["path"]).name for h in ranking.hits]


def test_text_search_ranks_every_video_and_caps_a_huge_limit(library):
    ranking = library.search_text("a rabbit in a meadow", k=10**9)
    assert ranking.capped and ranking.k == MAX_HITS
    assert sorted(names(ranking)) == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4"]
    scores = [h["score"] for h in ranking.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h["missing"] is None for h in ranking.hits)

    two = library.search_text("a rabbit in a meadow", k=2)
    assert not two.capped and names(two) == names(ranking)[:2]
    assert library.search_text("a rabbit", k=0).k == 1  # at least one


def test_metadata_filters(library):
    assert names(library.search_text("anything", filters=Filters(path="bikes"))) == ["bikes.mp4"]
    assert names(library.search_text("anything", filters=Filters(min_duration=6))) == ["bikes.mp4"]  # 10 s
    short = library.search_text("anything", filters=Filters(max_duration=4.5))
    assert sorted(names(short)) == ["carphone_distorted.mp4", "carphone_pristine.mp4"]  # 4.0 s each
    assert names(library.search_text("anything", filters=Filters(path="carphone", min_duration=5))) == []


def test_a_query_matching_nothing_is_an_empty_ranking(library):
    assert library.search_text("a cat", filters=Filters(path="no-such-folder")).hits == []
    # quotes and backslashes are values, not expression syntax
    injected = Filters(path='x" or path like "%')
    assert injected.expression() == 'path like "%x\\" or path like \\"%%"'
    assert library.search_text("a cat", filters=injected).hits == []


def test_more_like_this_ranks_by_the_stored_vectors(library, demo_index):
    index = VectorIndex(str(demo_index))
    rows = index.client.query(COLLECTION, filter="", output_fields=["vector", "path"], limit=100)
    source = next(r for r in rows if r["path"].endswith("bikes.mp4"))
    others = [r for r in rows if r["id"] != source["id"]]
    vectors = torch.nn.functional.normalize(torch.tensor([r["vector"] for r in others]), dim=-1)
    cosine = vectors @ torch.nn.functional.normalize(torch.tensor(source["vector"]), dim=-1)
    expected = [others[i]["path"] for i in cosine.argsort(descending=True).tolist()]

    ranking = library.more_like_this(source["id"], k=10)
    assert [h["path"] for h in ranking.hits] == expected  # the source itself is left out
    assert [h["score"] for h in ranking.hits] == pytest.approx(sorted(cosine.tolist(), reverse=True), abs=1e-5)
    assert names(library.more_like_this(source["id"], filters=Filters(path="pristine"))) == ["carphone_pristine.mp4"]


def test_rows_and_files_are_looked_up_only_in_the_index(library, demo_index, sample_dir):
    hit = library.search_text("bikes", filters=Filters(path="bikes")).hits[0]
    assert library.row(hit["id"])["path"] == hit["path"]
    assert library.video_file(hit["content_hash"]) == Path(hit["path"])
    for bad in ("../../etc/passwd", "/etc/passwd", hit["id"] + '" or id != "', "0" * 64, hit["id"].upper()):
        assert library.row(bad) is None
    assert library.video_file("0" * 64) is None and library.video_file("../" + hit["content_hash"]) is None


def test_a_moved_deleted_or_changed_file_is_shown_as_missing(sample_dir, kit, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"):
        shutil.copyfile(sample_dir / name, folder / name)
    db = kit.build_index(sorted(folder.iterdir()), tmp_path / "vtzoo.db")
    (folder / "bikes.mp4").rename(tmp_path / "moved.mp4")
    shutil.copyfile(sample_dir / "carphone_distorted.mp4", folder / "carphone_pristine.mp4")  # other content

    ranking = Library(kit.query_pipeline(db)).search_text("anything")
    missing = {Path(h["path"]).name: h["missing"] for h in ranking.hits}
    assert missing == {"bikes.mp4": "the file was moved or deleted since it was indexed",
                       "carphone_pristine.mp4": "the file changed since it was indexed", "bigbuckbunny.mp4": None}
    library = Library(kit.query_pipeline(db))
    gone = next(h for h in ranking.hits if h["missing"])
    assert library.video_file(gone["content_hash"]) is None


def test_an_index_of_another_operator_names_the_operator_it_needs(kit, tmp_path):
    db = tmp_path / "drl.db"
    index = VectorIndex(str(db))
    rows = [{"id": f"{i:064x}", "path": f"/videos/{i}.mp4", "content_hash": f"{i:064x}", "duration": 1.0,
             "start": 0.0, "end": 1.0} for i in range(3)]
    index.insert_vectors("drl__vit_b32_msrvtt_wti", torch.randn(3, 512), rows)

    library = Library(kit.query_pipeline(db))
    with pytest.raises(IndexMismatch) as caught:
        library.search_text("a cat")
    assert caught.value.needs == ["drl/vit-b32-msrvtt-wti"]
    assert "drl/vit-b32-msrvtt-wti" in str(caught.value) and "clip4clip/vit-b32-zeroshot" in str(caught.value)
    status = library.status()
    assert status["ok"] is False and status["needs"] == ["drl/vit-b32-msrvtt-wti"]


def test_an_index_of_another_size_is_explained(demo_index, kit):
    small = {"embed_dim": 32, "vision_width": 32, "vision_layers": 1, "vision_heads": 1, "transformer_width": 32,
             "transformer_layers": 1, "transformer_heads": 1}
    library = Library(kit.query_pipeline(demo_index, clip=small, cross_hidden_size=32))
    with pytest.raises(IndexMismatch, match="holds 64-d vectors but clip4clip/vit-b32-zeroshot .* embeds text in 32-d"):
        library.search_text("a cat")


def test_an_empty_index_says_so_until_videos_are_indexed(kit, sample_dir, tmp_path):
    db = tmp_path / "empty.db"
    VectorIndex(str(db))
    library = Library(kit.query_pipeline(db))
    with pytest.raises(IndexMismatch, match="is empty: index videos first"):
        library.check()
    kit.build_index([sample_dir / "bikes.mp4"], db)  # while the page is up
    assert names(library.search_text("bikes")) == ["bikes.mp4"]
