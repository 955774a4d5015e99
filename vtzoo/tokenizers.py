"""One tokenizer resolver for every family.

A family says which kind of tokenizer it needs (``"clip"`` BPE, ``"bert"`` / ``"distilbert"``
WordPiece, or ``"auto"``); a user may pass ``tokenizer=`` to ``vtzoo.create`` as a ready tokenizer
object, a local folder, a ``vocab.txt``, or a Hub repo name (``org/name[@revision]``); without it
the card's ``preprocessing.tokenizer: {repo, revision}`` is used. Every Hub access goes through
:func:`vtzoo.registry.hub.download_hub_files`, so the normal cache, ``HF_HUB_OFFLINE`` and a quick
:class:`~vtzoo.registry.errors.OfflineNotCachedError` (no retries) hold for all of them.
transformers then reads local files only; never ``trust_remote_code``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from vtzoo.registry.errors import WeightsError

KINDS = ("clip", "bert", "distilbert", "auto")


def resolve_tokenizer(given: Any, card_spec: Any, *, kind: str, where: str) -> Any:
    """The tokenizer ``given`` names (or the card's), as a transformers tokenizer.

    ``where`` names the operator in errors (e.g. ``"clip4clip/vit-b32-zeroshot"``).
    """
    if kind not in KINDS:
        raise ValueError(f"tokenizer kind {kind!r} is not one of {KINDS}")
    if given is not None and not isinstance(given, (str, os.PathLike)):
        return given  # a ready tokenizer object
    if given is not None:
        path = Path(given)
        if path.exists():
            return _from_local(path, kind)
        repo, _, revision = str(given).partition("@")
        return _from_hub(repo, revision or None, [], kind)
    if isinstance(card_spec, Mapping) and card_spec.get("repo"):
        return _from_hub(str(card_spec["repo"]), card_spec.get("revision"), list(card_spec.get("files") or []), kind)
    if kind == "clip":  # every OpenAI CLIP release shares one vocabulary, which open_clip ships
        return _packaged_clip(where)
    raise WeightsError(f"{where}: no tokenizer given and its card names none; pass tokenizer=<folder, vocab.txt or repo>")


def _tokenizer_class(kind: str, folder: Path | None = None):
    import transformers

    if kind == "auto" or (folder is not None and (folder / "tokenizer_config.json").is_file() and kind != "clip"):
        return transformers.AutoTokenizer
    return {"clip": transformers.CLIPTokenizer, "bert": transformers.BertTokenizerFast,
            "distilbert": transformers.DistilBertTokenizerFast}[kind]


def _from_local(path: Path, kind: str) -> Any:
    if path.is_file():
        if path.name != "vocab.txt" or kind == "clip":
            raise WeightsError(f"tokenizer {path}: give a tokenizer folder or a WordPiece vocab.txt")
        cls = _tokenizer_class("bert" if kind == "auto" else kind)
        tokens = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
        return cls(vocab={token: i for i, token in enumerate(tokens)}, do_lower_case=True)
    try:
        return _tokenizer_class(kind, path).from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"tokenizer folder {path} could not be read: {exc}") from None


def _from_hub(repo: str, revision: str | None, files: list[str], kind: str) -> Any:
    from vtzoo.registry.hub import TOKENIZER_PATTERNS, download_hub_files

    if kind == "clip":
        cached = _cached_clip(repo, revision)
        if cached is not None:
            return cached
        packaged = _packaged_clip(None)
        if packaged is not None:
            return packaged
    folder, _ = download_hub_files(repo, revision, files or None, allow_patterns=TOKENIZER_PATTERNS)
    return _from_local(folder, kind)


def _cached_clip(repo: str, revision: str | None) -> Any:
    """CLIP's tokenizer from the Hub cache, without a request (None if not cached)."""
    from huggingface_hub import try_to_load_from_cache
    from transformers import CLIPTokenizer

    cached = [try_to_load_from_cache(repo, name, revision=revision) for name in ("vocab.json", "merges.txt")]
    if all(isinstance(path, str) for path in cached):
        # from files, not the repo name: transformers would quietly build an empty tokenizer
        # for a repo whose files are missing
        return CLIPTokenizer(vocab=cached[0], merges=cached[1])
    return None


def _packaged_clip(where: str | None) -> Any:
    from vtzoo.backbones.clip_vocab import load_offline_clip_tokenizer

    tokenizer = load_offline_clip_tokenizer()
    if tokenizer is None and where is not None:
        raise WeightsError(f"{where}: CLIP's vocabulary is neither cached nor installed: "
                           "`pip install open_clip_torch`, or pass tokenizer=<folder>")
    return tokenizer
