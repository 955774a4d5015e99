"""Real downloads from the local Hub server (tests/hub_server.py): cache, pinning, offline, sha256."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch
from huggingface_hub import constants

from vtzoo.registry.cards import NonCommercialWeightsWarning, load_card
from vtzoo.registry.weights import (
    OfflineNotCachedError,
    WeightsError,
    WeightsIntegrityError,
    build_model,
    prefetch,
)


def _publish(local_hub, tiny, repo_id, tmp_path, seed, **commit_kwargs) -> tuple[str, object]:
    model = tiny.tiny_model(seed)
    files = tiny.saved_files(model, tmp_path / f"seed{seed}")
    return local_hub.add_commit(repo_id, files, **commit_kwargs), model


def _card(tiny, cards_dir, repo_id, revision, sha256=None, **changes):
    hub = {"repo": repo_id, "revision": revision, "files": ["config.json", "model.safetensors"]}
    if sha256:
        hub["sha256"] = {"model.safetensors": sha256}
    return load_card(tiny.write_card(cards_dir, tiny.card_dict(weights={"format": "vtzoo", "hub": hub}, **changes)))


def _cached_files(cache) -> list[str]:
    return sorted(p.name for p in cache.rglob("snapshots/*/*"))


def test_first_download_then_cache_hit_with_server_stopped(local_hub, hf_cache, tiny, repo_id, tmp_path):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=0)
    before = len(local_hub.requests)
    model = tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}")
    assert tiny.same_weights(model, reference)
    assert any(f"/{repo_id}/resolve/{sha}/model.safetensors" in path for _, path in local_hub.requests[before:])
    assert _cached_files(hf_cache) == ["config.json", "model.safetensors"]
    # The branch name too, so its ref is cached as well.
    tiny.TinyModel.from_pretrained(f"hf://{repo_id}")
    with local_hub.stopped():
        assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}"), reference)
        assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}"), reference)


def test_hf_hub_offline_is_honoured_when_set_after_import(local_hub, hf_cache, tiny, repo_id, tmp_path, monkeypatch):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=0)
    tiny.TinyModel.from_pretrained(f"hf://{repo_id}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert constants.HF_HUB_OFFLINE is False  # huggingface_hub read it at import: vtzoo must re-read it
    before = len(local_hub.requests)
    for spec in (f"hf://{repo_id}", f"hf://{repo_id}@{sha}"):
        assert tiny.same_weights(tiny.TinyModel.from_pretrained(spec), reference)
    assert local_hub.requests[before:] == []  # the server was up, and never asked
    with pytest.raises(OfflineNotCachedError) as info:
        tiny.TinyModel.from_pretrained("hf://org/never-downloaded@v1")
    message = str(info.value)
    assert "org/never-downloaded@v1 are not in the local Hub cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "vtzoo download" in message
    assert local_hub.requests[before:] == []


def test_offline_when_set_before_import(local_hub, hf_cache, tiny, repo_id, tmp_path, monkeypatch):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=4)
    tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 at start-up does
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}"), reference)
    with pytest.raises(OfflineNotCachedError, match="HF_HUB_OFFLINE is set"):
        tiny.TinyModel.from_pretrained(f"hf://{repo_id}-other")


def test_server_unreachable_and_not_cached(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path):
    sha, _ = _publish(local_hub, tiny, repo_id, tmp_path, seed=0)
    card = _card(tiny, cards_dir, repo_id, sha)
    with local_hub.stopped():
        with pytest.raises(OfflineNotCachedError) as info:
            tiny.TinyModel.from_pretrained(f"hf://{repo_id}")
        # A pinned commit (whole snapshot, or the card's file list) fails as fast and as clearly.
        with pytest.raises(OfflineNotCachedError, match=rf"{repo_id}@{sha} are not in the local Hub cache"):
            tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}")
        with pytest.raises(OfflineNotCachedError, match="could not be reached"):
            build_model(tiny.TinyModel, card, None)
    assert f"{repo_id}@main are not in the local Hub cache ({hf_cache})" in str(info.value)
    assert f"the Hub ({local_hub.endpoint}) could not be reached" in str(info.value)


def test_pinned_revision_vs_newer_commit_on_main(local_hub, hf_cache, tiny, repo_id, tmp_path):
    old_sha, old = _publish(local_hub, tiny, repo_id, tmp_path, seed=1, message="v1")
    local_hub.tag(repo_id, "v1.0", old_sha)
    new_sha, new = _publish(local_hub, tiny, repo_id, tmp_path, seed=2, message="v2")
    assert old_sha != new_sha and not tiny.same_weights(old, new)
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{old_sha}"), old)
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@v1.0"), old)
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}"), new)
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@main"), new)


def test_missing_revision_and_repo_are_named(local_hub, hf_cache, tiny, repo_id, tmp_path):
    _publish(local_hub, tiny, repo_id, tmp_path, seed=0)
    with pytest.raises(WeightsError, match=rf"revision 'v9' does not exist in {repo_id}"):
        tiny.TinyModel.from_pretrained(f"hf://{repo_id}@v9")
    with pytest.raises(WeightsError, match=r"repository 'org/absent' does not exist"):
        tiny.TinyModel.from_pretrained("hf://org/absent")
    with pytest.raises(WeightsError, match=r"expected hf://org/repo\[@revision\]"):
        tiny.TinyModel.from_pretrained("hf://just-a-name")


def test_card_weights_verified_by_sha256(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=5)
    digest = hashlib.sha256(local_hub.files(repo_id)["model.safetensors"]).hexdigest()
    card = _card(tiny, cards_dir, repo_id, sha, digest)
    model, resolved = build_model(tiny.TinyModel, card, None)
    assert tiny.same_weights(model, reference) and resolved.card is card
    # The same card by name, through from_pretrained (config from the card, weights pinned).
    assert tiny.same_weights(tiny.TinyModel.from_pretrained("tiny/v1"), reference)


@pytest.mark.parametrize("keep_etag", [False, True], ids=["altered-file", "lying-mirror"])
def test_tampered_file_refused_by_sha256(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path, keep_etag):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=6)
    original = local_hub.files(repo_id)["model.safetensors"]
    card = _card(tiny, cards_dir, repo_id, sha, hashlib.sha256(original).hexdigest())
    altered = original[:-4] + bytes(b ^ 0xFF for b in original[-4:])  # same size: only a hash tells
    local_hub.tamper(repo_id, "model.safetensors", altered, revision=sha, keep_etag=keep_etag)
    with pytest.raises(WeightsIntegrityError) as info:
        build_model(tiny.TinyModel, card, None)
    message = str(info.value)
    assert f"{repo_id}@{sha}: file model.safetensors has sha256 {hashlib.sha256(altered).hexdigest()}" in message
    assert "refusing to load it" in message
    assert "model.safetensors" not in _cached_files(hf_cache)  # the bad bytes are not kept
    # Once the Hub serves the right bytes again, the same card loads.
    local_hub.tamper(repo_id, "model.safetensors", original, revision=sha)
    model, _ = build_model(tiny.TinyModel, card, None)
    assert tiny.same_weights(model, reference)


def test_non_commercial_card_weights_warn(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path):
    sha, _ = _publish(local_hub, tiny, repo_id, tmp_path, seed=0)
    card = _card(tiny, cards_dir, repo_id, sha, license={"code": "MIT", "weights": "CC-BY-NC-SA-4.0"})
    with pytest.warns(NonCommercialWeightsWarning, match="non-commercial use only"):
        build_model(tiny.TinyModel, card, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonCommercialWeightsWarning)
        build_model(tiny.TinyModel, card, "random")


def test_push_to_hub_then_download(local_hub, hf_cache, tiny, repo_id):
    model = tiny.tiny_model(7)
    sha = model.push_to_hub(repo_id)
    assert len(sha) == 40 and set(local_hub.files(repo_id, sha)) == {"config.json", "model.safetensors"}
    again = tiny.tiny_model(8)
    newer = again.push_to_hub(repo_id, commit_message="retrain")
    assert newer != sha
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}@{sha}"), model)
    assert tiny.same_weights(tiny.TinyModel.from_pretrained(f"hf://{repo_id}"), again)


def test_original_release_on_the_hub_is_converted(local_hub, hf_cache, tiny, repo_id, tmp_path):
    from safetensors.torch import save_file

    reference = tiny.tiny_model(9)
    sd = reference.state_dict()
    original = {"enc.w": sd["encoder.weight"].t().contiguous(), "enc.b": sd["encoder.bias"],
                "dec.w": sd["head.weight"].t().contiguous(), "dec.b": sd["head.bias"]}
    save_file(original, str(tmp_path / "release.safetensors"))
    torch.save(original, tmp_path / "release.bin")
    sha = local_hub.add_commit(repo_id, {"release.safetensors": tmp_path / "release.safetensors",
                                         "release.bin": tmp_path / "release.bin", "README.md": "# release"})
    model, resolved = build_model(tiny.TinyModel, None, f"hf://{repo_id}@{sha}")
    assert resolved.format == "original" and tiny.same_weights(model, reference)
    # Only what loading needs was fetched: safetensors preferred, the pickle and README left alone.
    assert _cached_files(hf_cache) == ["release.safetensors"]


def test_prefetch_then_offline_load(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path, monkeypatch):
    sha, reference = _publish(local_hub, tiny, repo_id, tmp_path, seed=10)
    tok_repo = f"{repo_id}-tokenizer"
    tok_sha = local_hub.add_commit(tok_repo, {"vocab.txt": "[PAD]\n[UNK]\nhello\n", "tokenizer_config.json": "{}",
                                              "pytorch_model.bin": b"big weights we must not fetch"})
    digest = hashlib.sha256(local_hub.files(repo_id)["model.safetensors"]).hexdigest()
    _card(tiny, cards_dir, repo_id, sha, digest,
          preprocessing={"frames": 4, "tokenizer": {"repo": tok_repo, "revision": tok_sha}})
    folder = prefetch("tiny/v1")
    assert folder.name == sha and sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert _cached_files(hf_cache) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with local_hub.stopped():
        assert tiny.same_weights(tiny.TinyModel.from_pretrained("tiny/v1"), reference)
        assert prefetch("tiny/v1") == folder  # idempotent, and works from the cache


def test_prefetch_refuses_card_without_weights(tiny, cards_dir):
    tiny.write_card(cards_dir, tiny.card_dict(weights={"note": "weights never released"}))
    with pytest.raises(WeightsError, match=r"tiny/v1 has no published Hub weights to download \(weights never"):
        prefetch("tiny/v1")


def test_cli_cards_card_and_download(local_hub, hf_cache, tiny, cards_dir, repo_id, tmp_path, capsys):
    from vtzoo.cli import main

    sha, _ = _publish(local_hub, tiny, repo_id, tmp_path, seed=11)
    original = local_hub.files(repo_id)["model.safetensors"]
    _card(tiny, cards_dir, repo_id, sha, hashlib.sha256(original).hexdigest())
    assert main(["cards"]) == 0
    assert "tiny/v1" in capsys.readouterr().out
    assert main(["card", "tiny/v1"]) == 0
    shown = capsys.readouterr().out
    assert f"revision: {sha}" in shown and "weights: MIT" in shown
    assert main(["card", "tiny/v2"]) != 0
    assert "unknown weight card 'tiny/v2'. Did you mean: tiny/v1?" in capsys.readouterr().err
    assert main(["download", "tiny/v1"]) == 0
    assert sha in capsys.readouterr().out
    assert _cached_files(hf_cache) == ["config.json", "model.safetensors"]
    # A tampered mirror is reported, and nothing bad stays in the cache.
    for leftover in hf_cache.rglob("snapshots/*/model.safetensors"):
        leftover.resolve().unlink()
        leftover.unlink()
    local_hub.tamper(repo_id, "model.safetensors", original[:-1] + bytes([original[-1] ^ 0xFF]), revision=sha)
    assert main(["download", "tiny/v1"]) != 0
    assert "file model.safetensors has sha256" in capsys.readouterr().err
    assert _cached_files(hf_cache) == ["config.json"]
