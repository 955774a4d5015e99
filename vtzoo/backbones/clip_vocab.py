"""CLIP's BPE vocabulary without a download.

OpenAI's CLIP tokenizer is defined by one file, ``bpe_simple_vocab_16e6.txt.gz`` (MIT licence),
which the ``open_clip_torch`` package ships. transformers' ``CLIPTokenizer`` reads the same
vocabulary as ``vocab.json`` + ``merges.txt``; this module writes those two files from the
packaged one, so CLIP tokenisation works offline with the tokenizer code of transformers.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

# The OpenAI tokenizer keeps the first 49152 - 256 - 2 merges of the file (its line 0 is a header).
_NUM_MERGES = 49152 - 256 - 2
START_OF_TEXT, END_OF_TEXT = "<|startoftext|>", "<|endoftext|>"


def _byte_alphabet() -> list[str]:
    """The 256 stand-in characters byte-level BPE uses for raw bytes, in vocabulary order.

    Printable bytes stand for themselves and come first; the others map to code points from
    256 upwards and follow, in byte order (the order OpenAI's vocabulary lists them in).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def packaged_bpe_file() -> Path | None:
    """Path of the BPE file shipped by ``open_clip_torch``, if it is installed."""
    try:
        from importlib.util import find_spec

        spec = find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    return candidate if candidate.is_file() else None


def write_tokenizer_files(bpe_file: str | Path, out_dir: str | Path) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` (transformers' CLIP layout) from OpenAI's BPE file."""
    lines = gzip.open(bpe_file, "rt", encoding="utf-8").read().split("\n")
    merges = [line for line in lines[1 : _NUM_MERGES + 1]]
    alphabet = _byte_alphabet()
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["".join(m.split()) for m in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return out


@lru_cache(maxsize=None)
def offline_clip_tokenizer_dir(cache_dir: str | None = None) -> Path | None:
    """A folder ``CLIPTokenizer.from_pretrained`` can read, built once from the packaged vocab."""
    bpe = packaged_bpe_file()
    if bpe is None:
        return None
    from vtzoo.cache import default_cache_dir

    out = Path(cache_dir) if cache_dir else default_cache_dir() / "clip-bpe-16e6"
    if not (out / "vocab.json").is_file() or not (out / "merges.txt").is_file():
        write_tokenizer_files(bpe, out)
    return out


def load_offline_clip_tokenizer():
    """transformers' CLIPTokenizer over the packaged vocabulary (None if it is not installed)."""
    folder = offline_clip_tokenizer_dir()
    if folder is None:
        return None
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)
