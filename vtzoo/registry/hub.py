"""Downloads from the Hugging Face Hub (or any ``HF_ENDPOINT``): revision pinning, the normal
cache, ``HF_HUB_OFFLINE`` honoured at call time, a fast and clear failure when offline or the Hub
is unreachable, sha256 checks against the card, and tokenizer files for the cards' tokenizers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from vtzoo.registry.errors import OfflineNotCachedError, WeightsError, WeightsIntegrityError, sha256_of

# Files a tokenizer needs; a tokenizer repo usually also holds full model weights we must not fetch.
TOKENIZER_PATTERNS = (
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab*",
    "merges.txt",
    "*.model",
    "config.json",
)
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_offline() -> bool:
    """True if ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set now or was when huggingface_hub loaded.

    huggingface_hub reads the variable once, at import; vtzoo reads it again at each call so a
    program (or a test) that sets it later is still never sent to the network.
    """
    from huggingface_hub import constants

    now = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().lower()
    return now in {"1", "true", "yes", "on"} or bool(constants.HF_HUB_OFFLINE)


def parse_hf_uri(uri: str) -> tuple[str, str | None]:
    """``hf://org/repo@rev`` -> (``org/repo``, ``rev``)."""
    body = uri[len("hf://") :]
    repo, _, revision = body.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise WeightsError(f"weights {uri!r}: expected hf://org/repo[@revision]")
    return repo, revision or None


def download_hub_files(
    repo: str,
    revision: str | None,
    files: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
    *,
    allow_patterns: Sequence[str] | None = None,
) -> tuple[Path, list[Path]]:
    """Fetch ``files`` (or the snapshot, filtered by ``allow_patterns``) of ``repo@revision``.

    Files land in the normal Hub cache; offline (see :func:`is_offline`) only the cache is read.
    Returns the snapshot folder and the local paths. Files named in ``sha256`` are re-hashed; a
    mismatch raises :class:`WeightsIntegrityError` naming the file, and the file is removed from
    the cache so a later download can replace it. Missing from the cache while offline, or the
    Hub unreachable and nothing cached: :class:`OfflineNotCachedError`.
    """
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo}@{revision or 'main'}"
    offline = is_offline()
    patterns = list(allow_patterns) if allow_patterns else None
    try:
        if not offline and revision and _COMMIT_SHA.fullmatch(revision):
            # A commit never changes, so what the cache holds is the answer. When it holds nothing
            # and the Hub is down, huggingface_hub retries for ~20 s before giving up: one plain
            # request tells at once.
            try:
                folder, paths = _fetch(repo, revision, files, patterns, local_only=True)
            except LocalEntryNotFoundError:
                unreachable = _hub_unreachable(repo, revision)
                if unreachable is not None:
                    raise LocalEntryNotFoundError(f"cannot reach the Hub: {unreachable}") from None
                folder, paths = _fetch(repo, revision, files, patterns, local_only=False)
        else:
            folder, paths = _fetch(repo, revision, files, patterns, local_only=offline)
    except LocalEntryNotFoundError as exc:
        raise _offline_error(repo, revision, offline, exc) from None
    except RevisionNotFoundError:
        raise WeightsError(f"weights {where}: revision {revision!r} does not exist in {repo}") from None
    except RepositoryNotFoundError:
        raise WeightsError(f"weights {where}: repository {repo!r} does not exist (or needs a token)") from None
    except EntryNotFoundError as exc:
        raise WeightsError(f"weights {where}: file missing in the repository: {exc}") from None
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsError(f"weights {where}: download failed: {exc}") from None
    verify_sha256(folder, sha256 or {}, where)
    return folder, paths


def _fetch(
    repo: str, revision: str | None, files: Sequence[str] | None, patterns: list[str] | None, local_only: bool
) -> tuple[Path, list[Path]]:
    from huggingface_hub import hf_hub_download, snapshot_download

    if files:
        paths = [Path(hf_hub_download(repo, f, revision=revision, local_files_only=local_only)) for f in files]
        # hf_hub_download keeps subfolders: the snapshot root is as many levels up as the name is deep
        return paths[0].parents[len(Path(files[0]).parts) - 1], paths
    folder = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns, local_files_only=local_only))
    return folder, sorted(p for p in folder.rglob("*") if p.is_file())


def _hub_unreachable(repo: str, revision: str) -> Exception | None:
    """The connection error of one request to the Hub (no retries), or None if it answered."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().repo_info(repo, revision=revision)
    except HfHubHTTPError:  # it answered (even "not found"): the real call reports that
        return None
    except Exception as exc:  # connection refused, DNS, timeout (the HTTP client's own types)
        return exc
    return None


def _offline_error(repo: str, revision: str | None, offline: bool, cause: Exception) -> OfflineNotCachedError:
    reason = "HF_HUB_OFFLINE is set" if offline else f"the Hub ({_endpoint()}) could not be reached"
    rev = revision or "main"
    return OfflineNotCachedError(
        f"weights {repo}@{rev} are not in the local Hub cache ({_cache_dir()}) and {reason}. Fetch them "
        f"once with network access: `vtzoo download <operator/variant>` for a card, or "
        f"`hf download {repo} --revision {rev}`; then they load offline. Cause: {cause}"
    )


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def verify_sha256(folder: Path, sha256: Mapping[str, str], where: str) -> None:
    """Re-hash each file named in ``sha256``; drop a mismatching file from the cache and refuse it."""
    for name, expected in sha256.items():
        local = folder / name
        if not local.is_file():
            raise WeightsError(f"weights {where}: the card gives a sha256 for {name}, but it was not downloaded")
        actual = sha256_of(local)
        if actual != expected.lower():
            _drop_from_cache(local)
            raise WeightsIntegrityError(
                f"weights {where}: file {name} has sha256 {actual}, but the card expects {expected}; "
                "refusing to load it (it was removed from the cache; the Hub or a mirror serves different "
                "bytes than the card was written for)"
            )


def _drop_from_cache(path: Path) -> None:
    # In the Hub cache a snapshot file is a symlink to blobs/<etag>; remove both, so the next
    # download fetches the bytes again instead of trusting the blob name.
    try:
        target = path.resolve()
        path.unlink()
        if target != path and target.is_file():
            target.unlink()
    except OSError:
        pass


def tokenizer_source(preprocessing: Mapping[str, Any]) -> tuple[str, str | None, list[str]] | None:
    """``(repo, revision, files)`` of a card's Hub tokenizer, or None if it names none."""
    spec = preprocessing.get("tokenizer")
    if isinstance(spec, Mapping) and spec.get("repo"):
        return str(spec["repo"]), spec.get("revision"), list(spec.get("files") or [])
    return None


def load_tokenizer(preprocessing: Mapping[str, Any], **kwargs: Any):
    """``transformers.AutoTokenizer`` for a card's ``preprocessing.tokenizer: {repo, revision}``.

    The tokenizer files (only those: see :data:`TOKENIZER_PATTERNS`, or the card's
    ``tokenizer.files``) are fetched at the card's revision through :func:`download_hub_files`,
    so the normal cache, ``HF_HUB_OFFLINE`` at call time and :class:`OfflineNotCachedError`
    (without transformers' network retries) apply; transformers then reads the local folder.
    Never ``trust_remote_code``.
    """
    source = tokenizer_source(preprocessing)
    if source is None:
        raise WeightsError(f"preprocessing.tokenizer names no Hub repo: {preprocessing.get('tokenizer')!r}")
    repo, revision, files = source
    folder, _ = download_hub_files(repo, revision, files or None, allow_patterns=TOKENIZER_PATTERNS)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), **{**kwargs, "trust_remote_code": False})
    except (OSError, ValueError) as exc:
        raise WeightsError(f"tokenizer {repo}@{revision or 'main'} could not be loaded from {folder}: {exc}") from None
