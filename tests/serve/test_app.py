"""The web app over HTTP (a real uvicorn server on loopback): the API contract, range requests,
and that only files of the index can be fetched."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from PIL import Image


def get(server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A GET with the path sent exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=60)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def get_json(server, path: str) -> tuple[int, dict]:
    status, _, body = get(server, path)
    return status, json.loads(body)


def test_search_api_follows_the_contract(demo_server):
    status, body = get_json(demo_server, "/api/search?q=a%20rabbit%20in%20a%20meadow&k=3")
    assert status == 200
    assert body["operator"] == "clip4clip/vit-b32-zeroshot" and body["k"] == 3 and not body["capped"]
    assert len(body["hits"]) == 3
    for hit in body["hits"]:
        assert {"path", "score", "start", "end", "thumbnails"} <= set(hit)
        assert Path(hit["path"]).is_file() and len(hit["thumbnails"]) == 4
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)

    status, headers, jpeg = get(demo_server, body["hits"][0]["thumbnails"][0])
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg)).height == 120


def test_the_page_is_served_with_its_scripts_inlined(demo_server):
    status, headers, page = get(demo_server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"renderHits" in page and b'name="q"' in page
    assert "default-src 'none'" in headers["content-security-policy"]


def test_video_files_are_served_with_range_requests(demo_server):
    _, body = get_json(demo_server, "/api/search?q=bikes&path=bikes")
    hit = body["hits"][0]
    data = Path(hit["path"]).read_bytes()
    status, headers, part = get(demo_server, hit["video"], {"Range": "bytes=1000-1999"})
    assert status == 206 and part == data[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{len(data)}" and headers["content-type"] == "video/mp4"
    status, _, whole = get(demo_server, hit["video"])
    assert status == 200 and whole == data


def test_a_huge_limit_is_capped_and_a_bad_one_refused(demo_server):
    status, body = get_json(demo_server, "/api/search?q=bikes&k=100000000")
    assert status == 200 and body["capped"] and body["k"] == 100 and len(body["hits"]) == 4
    status, body = get_json(demo_server, "/api/search?q=bikes&k=many")
    assert status == 400 and body["error"] == "k must be an integer, got 'many'"
    status, body = get_json(demo_server, "/api/search?q=bikes&min_duration=nan")
    assert status == 400 and body["error"] == "min_duration must be a number, got 'nan'"
    status, body = get_json(demo_server, "/api/search?q=%20")
    assert status == 400 and "empty" in body["error"]


def test_a_query_matching_nothing_is_an_empty_list(demo_server):
    status, body = get_json(demo_server, "/api/search?q=a%20cat&path=no-such-folder")
    assert status == 200 and body["hits"] == []
    status, body = get_json(demo_server, "/api/search?q=a%20cat&min_duration=3600")
    assert status == 200 and body["hits"] == []


def test_more_like_this_from_a_hit(demo_server):
    _, body = get_json(demo_server, "/api/search?q=bikes&path=bikes")
    source = body["hits"][0]
    status, similar = get_json(demo_server, f"/api/similar?id={quote(source['id'])}&k=2")
    assert status == 200 and similar["like"] == source["id"] and len(similar["hits"]) == 2
    assert source["path"] not in [h["path"] for h in similar["hits"]]
    status, body = get_json(demo_server, "/api/similar?id=" + "0" * 64)
    assert status == 404


ATTACKS = [
    "/video/../../../../etc/passwd",
    "/video/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/video/%2e%2e/%2e%2e/etc/passwd",
    "/video/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/video/%2Fetc%2Fpasswd",
    "/video//etc/passwd",
    "/video/etc/passwd",
    "/thumbs/..%2F..%2Fetc%2Fpasswd/0.jpg",
    "/thumbs/%252e%252e%252fetc%252fpasswd/0.jpg",
    "/thumbs/%2Fetc%2Fpasswd/0.jpg",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("path", ATTACKS)
def test_paths_outside_the_index_are_never_served(demo_server, path):
    status, _, body = get(demo_server, path)
    assert status == 404 and b"root:" not in body


def test_files_beside_the_indexed_ones_are_not_served(demo_server, demo_index, sample_dir, tmp_path):
    _, body = get_json(demo_server, "/api/search?q=bikes")
    folder = Path(body["hits"][0]["path"]).parent
    stranger = folder / "not-indexed.mp4"
    shutil.copyfile(sample_dir / "bikes.mp4", tmp_path / "x.mp4")
    (tmp_path / "x.mp4").write_bytes((tmp_path / "x.mp4").read_bytes() + b"\0")  # other content, same folder
    shutil.move(tmp_path / "x.mp4", stranger)
    try:
        digest = hashlib.sha256(stranger.read_bytes()).hexdigest()
        passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
        for path in (f"/video/{digest}", f"/video/{passwd}", f"/thumbs/{digest}/0.jpg", f"/thumbs/{passwd}/0.jpg",
                     f"/video/{body['hits'][0]['id']}%00", f"/thumbs/{body['hits'][0]['id']}/9.jpg"):
            assert get(demo_server, path)[0] == 404, path
    finally:
        stranger.unlink()


def test_a_missing_file_is_flagged_and_the_others_still_work(index_missing_bikes, kit, tmp_path):
    with kit.serve(index_missing_bikes, tmp_path / "thumbs") as server:
        _, body = get_json(server, "/api/search?q=anything")
        by_name = {Path(h["path"]).name: h for h in body["hits"]}
        gone, kept = by_name["bikes.mp4"], by_name["bigbuckbunny.mp4"]
        assert gone["missing"] == "the file was moved or deleted since it was indexed"
        assert gone["thumbnails"] == [] and gone["video"] is None
        assert get(server, f"/thumbs/{gone['id']}/0.jpg")[0] == 404
        assert kept["missing"] is None and get(server, kept["thumbnails"][0])[0] == 200
        assert get(server, kept["video"], {"Range": "bytes=0-9"})[0] == 206


def test_an_index_of_another_operator_is_explained(kit, tmp_path):
    import torch

    from vtzoo.pipelines.index import VectorIndex

    rows = [{"id": "a" * 64, "path": "/v/a.mp4", "content_hash": "a" * 64, "duration": 1.0, "start": 0.0, "end": 1.0}]
    VectorIndex(str(tmp_path / "other.db")).insert_vectors("frozen_in_time__cc_webvid2m_4f", torch.randn(1, 256), rows)
    with kit.serve(tmp_path / "other.db", tmp_path / "thumbs") as server:
        status, body = get_json(server, "/api/search?q=a%20cat")
        assert status == 409 and body["needs"] == ["frozen_in_time/cc-webvid2m-4f"] and body["hits"] == []
        assert "frozen_in_time/cc-webvid2m-4f" in body["error"]
        status, about = get_json(server, "/api/status")
        assert status == 200 and about["ok"] is False and about["operator"] == "clip4clip/vit-b32-zeroshot"
