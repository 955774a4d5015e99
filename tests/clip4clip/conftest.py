"""Fixtures of the CLIP4Clip tests: golden case folders and a tiny CLIP BPE tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "clip4clip"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN




def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte alphabet: printable bytes map to themselves, the rest above 255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


TINY_MERGES = ["t h", "th e</w>", "c a", "ca t</w>"]


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """vocab.json + merges.txt of a CLIP BPE with 4 merges; SOT/EOT are the two largest ids."""
    folder = tmp_path_factory.mktemp("clip-bpe")
    chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars] + ["th", "the</w>", "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(TINY_MERGES) + "\n")
    return folder
