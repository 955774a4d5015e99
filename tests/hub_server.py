"""A small Hugging Face Hub-compatible server for tests (standard library only).

It speaks the part of the Hub protocol that ``huggingface_hub`` and ``transformers`` use to
download and to push, so the tests exercise real downloads, the real cache and real error
codes without any network:

* ``HEAD/GET /{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, ``ETag`` (sha256 of
  the content, the way the Hub names LFS blobs) and ``X-Error-Code`` on errors
  (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``);
* ``GET /api/models/{repo}[/revision/{revision}]`` (``id`` + ``sha``);
* ``GET /api/models/{repo}/tree/{revision}[/{folder}]`` (one page, no ``Link`` header);
* ``GET /api/models/{repo}/refs``;
* ``POST /api/repos/create``, ``/api/models/{repo}/preupload/{revision}`` and
  ``/api/models/{repo}/commit/{revision}`` (regular, non-LFS uploads), so ``push_to_hub`` works.

Repositories live in memory (:class:`HubState`): commits are snapshots ``{path: bytes}`` with
40-hex ids, branches and tags point at commits. Tests add commits directly
(:meth:`LocalHub.add_commit`) and can tamper with a stored file (:meth:`LocalHub.tamper`).
The state outlives the HTTP server, so a test can stop the server (to prove a cache hit) and
start it again on the same port (``huggingface_hub`` reads ``HF_ENDPOINT`` once, at import).

Run ``python tests/hub_server.py --port 8765 --serve-dir DIR`` to serve ``DIR/org/name/...``
by hand.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a blob (what the Hub reports as a file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    message: str
    parent: str | None
    # ETags that differ from the content's sha256: a lying mirror, for integrity tests.
    etag_overrides: dict[str, str] = field(default_factory=dict)


@dataclass
class Repo:
    repo_id: str
    repo_type: str = "model"
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and _COMMIT_SHA.match(revision):
            sha = revision
        return self.commits.get(sha) if sha else None


class HubState:
    """In-memory repositories, shared by every server instance started on it."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self._counter = 0

    def create_repo(self, repo_id: str, repo_type: str = "model") -> tuple[Repo, bool]:
        with self.lock:
            key = (repo_type, repo_id)
            created = key not in self.repos
            if created:
                self.repos[key] = Repo(repo_id, repo_type)
                self.commit(repo_id, {}, message="initial commit", repo_type=repo_type)
            return self.repos[key], created

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        message: str = "commit",
        delete: tuple[str, ...] | list[str] = (),
        repo_type: str = "model",
    ) -> str:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            parent = repo.branches.get(branch)
            snapshot = dict(repo.commits[parent].files) if parent else {}
            snapshot.update(files)
            for path in delete:
                snapshot.pop(path, None)
            self._counter += 1
            seed = json.dumps([repo_id, parent, message, self._counter, sorted(snapshot)]).encode()
            sha = hashlib.sha1(seed).hexdigest()
            repo.commits[sha] = Commit(sha, snapshot, message, parent)
            repo.branches[branch] = sha
            return sha


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        # One request per connection: a stopped server then really stops answering, instead of
        # a client's pooled keep-alive connection still reaching a live handler thread.
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: str, message: str, status: int = 404, headers: dict[str, str] | None = None) -> None:
        self._json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            self._error("RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error("RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # -- routing ----------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.state.requests.append((self.command, self.path))
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")  # still percent-encoded: a revision may hold "%2F"
        query = parse_qs(url.query)
        with self.state.lock:
            if parts[0] == "api" and len(parts) >= 4 and parts[1] in _REPO_TYPES:
                return self._api_get(_REPO_TYPES[parts[1]], "/".join(parts[2:4]), parts[4:], query)
            repo_type = "model"
            if parts[0] in ("datasets", "spaces"):
                repo_type, parts = _REPO_TYPES[parts[0]], parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(repo_type, "/".join(parts[:2]), unquote(parts[3]), unquote("/".join(parts[4:])))
        self._error("NotFound", f"no route for GET {url.path}")

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = repo and self._commit(repo, revision)
        if commit is None:
            return
        data = commit.files.get(path)
        if data is None:  # with the commit, so clients cache the absence (.no_exist)
            headers = {"X-Repo-Commit": commit.sha}
            return self._error("EntryNotFound", f"{path} does not exist at {revision}", headers=headers)
        etag = commit.etag_overrides.get(path) or hashlib.sha256(data).hexdigest()
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
        self._send(200, data, headers)

    def _api_get(self, repo_type: str, repo_id: str, rest: list[str], query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        if not rest or rest[0] == "revision":
            commit = self._commit(repo, unquote(rest[1]) if len(rest) > 1 else "main")
            if commit is None:
                return
            siblings = [{"rfilename": p, "size": len(d)} for p, d in sorted(commit.files.items())]
            info = {"id": repo_id, "modelId": repo_id, "sha": commit.sha, "private": False, "siblings": siblings}
            return self._json(info)
        if rest[0] == "tree" and len(rest) >= 2:
            commit = self._commit(repo, unquote(rest[1]))
            if commit is None:
                return
            folder = unquote("/".join(rest[2:])).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            return self._tree(commit, folder, recursive)
        if rest[0] == "refs":
            def refs(table: dict[str, str], kind: str) -> list[dict]:
                return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in sorted(table.items())]

            return self._json({"branches": refs(repo.branches, "heads"), "tags": refs(repo.tags, "tags"), "converts": []})
        self._error("NotFound", f"no route for {'/'.join(rest)}")

    def _tree(self, commit: Commit, folder: str, recursive: bool) -> None:
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for path, data in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            relative = path[len(prefix) :]
            if "/" in relative and not recursive:
                folders.add(prefix + relative.split("/", 1)[0])
                continue
            for depth in range(1, relative.count("/") + 1):  # parent folders of a nested file
                folders.add(prefix + "/".join(relative.split("/")[:depth]))
            entries.append({"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)})
        if folder and not entries and not folders:
            return self._error("EntryNotFound", f"{folder} does not exist at {commit.sha}")
        dirs = [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()} for d in sorted(folders)]
        self._json(dirs + entries)

    def do_POST(self) -> None:
        self.state.requests.append((self.command, self.path))
        parts = urlsplit(self.path).path.strip("/").split("/")
        body = self._body()
        with self.state.lock:
            if parts[:3] == ["api", "repos", "create"]:
                return self._create(json.loads(body or b"{}"))
            if parts[0] == "api" and len(parts) >= 6 and parts[1] in _REPO_TYPES:
                repo_type, repo_id, action = _REPO_TYPES[parts[1]], "/".join(parts[2:4]), parts[4]
                revision = unquote("/".join(parts[5:]))
                if action == "preupload":
                    return self._preupload(repo_type, repo_id, revision, json.loads(body))
                if action == "commit":
                    return self._push_commit(repo_type, repo_id, revision, body)
        self._error("NotFound", f"no route for POST {self.path}")

    def _create(self, payload: dict) -> None:
        name, org = payload.get("name"), payload.get("organization")
        repo_id = f"{org}/{name}" if org else name
        repo_type = payload.get("type") or "model"
        _, created = self.state.create_repo(repo_id, repo_type)
        url = f"http://{self.headers.get('Host')}/{repo_id}"
        if not created:  # the Hub answers 409 with the url too; `exist_ok=True` reads it
            return self._json({"error": "You already created this model repo", "url": url}, status=409)
        self._json({"url": url, "name": repo_id})

    def _preupload(self, repo_type: str, repo_id: str, revision: str, payload: dict) -> None:
        if self._repo(repo_type, repo_id) is None:
            return
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload.get("files", [])]
        self._json({"files": files})

    def _push_commit(self, repo_type: str, repo_id: str, revision: str, body: bytes) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        if revision not in repo.branches:
            return self._error("RevisionNotFound", f"Invalid rev id: {revision}")
        message, added, deleted = "upload", {}, []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                message = value.get("summary") or message
            elif item["key"] == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                return self._error("BadRequest", f"unsupported commit operation {item['key']!r}", status=400)
        sha = self.state.commit(repo_id, added, branch=revision, message=message, delete=deleted, repo_type=repo_type)
        host = self.headers.get("Host")
        self._json({"commitUrl": f"http://{host}/{repo_id}/commit/{sha}", "commitOid": sha, "success": True})


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # restart on the same port right after a stop
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: HubState):
        self.state = state
        super().__init__(address, _Handler)


class LocalHub:
    """A Hub-compatible server on 127.0.0.1:``port``, with helpers to shape its repositories."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.state = HubState()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "LocalHub":
        if self._server is None:
            self._server = _Server((self.host, self.port), self.state)
            # a short poll interval makes stop() quick
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._thread = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator["LocalHub"]:
        """Stop the server for the ``with`` block (nothing listens on the port), then restart it."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.state.requests

    # -- shaping repositories from tests ----------------------------------------------------
    def create_repo(self, repo_id: str, repo_type: str = "model") -> None:
        self.state.create_repo(repo_id, repo_type)

    def add_commit(
        self,
        repo_id: str,
        files: dict[str, bytes | str | Path],
        *,
        branch: str = "main",
        message: str = "commit",
        delete: tuple[str, ...] = (),
        repo_type: str = "model",
    ) -> str:
        """Commit ``files`` (bytes, text, or a local file to read) on ``branch``; returns the sha."""
        self.state.create_repo(repo_id, repo_type)
        data = {path: _as_bytes(content) for path, content in files.items()}
        return self.state.commit(repo_id, data, branch=branch, message=message, delete=delete, repo_type=repo_type)

    def tag(self, repo_id: str, tag: str, revision: str = "main", repo_type: str = "model") -> str:
        with self.state.lock:
            repo = self.state.repos[(repo_type, repo_id)]
            commit = repo.resolve(revision)
            assert commit is not None, f"{repo_id} has no revision {revision!r}"
            repo.tags[tag] = commit.sha
            return commit.sha

    def tamper(
        self,
        repo_id: str,
        path: str,
        data: bytes,
        *,
        revision: str = "main",
        keep_etag: bool = False,
        repo_type: str = "model",
    ) -> None:
        """Replace ``path``'s bytes inside an existing commit (same commit sha).

        ``keep_etag=True`` also keeps announcing the original content's sha256 as the ETag: a
        lying mirror. Clients that trust the ETag then store the altered bytes under the
        original blob name; only re-hashing the content catches it.
        """
        with self.state.lock:
            commit = self.state.repos[(repo_type, repo_id)].resolve(revision)
            assert commit is not None and path in commit.files, f"{repo_id}@{revision} has no {path}"
            if keep_etag:
                commit.etag_overrides[path] = hashlib.sha256(commit.files[path]).hexdigest()
            else:
                commit.etag_overrides.pop(path, None)
            commit.files[path] = data

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        commit = self.state.repos[(repo_type, repo_id)].resolve(revision)
        assert commit is not None
        return dict(commit.files)


def _as_bytes(content: bytes | str | Path) -> bytes:
    if isinstance(content, Path):
        return content.read_bytes()
    if isinstance(content, str):
        return content.encode()
    return bytes(content)


def _main() -> None:  # pragma: no cover - manual use
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--serve-dir", type=Path, help="folder of org/name/<files> to serve as repos")
    args = parser.parse_args()
    hub = LocalHub(args.port)
    if args.serve_dir:
        for repo_dir in sorted(p for p in args.serve_dir.glob("*/*") if p.is_dir()):
            files = {str(f.relative_to(repo_dir)): f for f in repo_dir.rglob("*") if f.is_file()}
            sha = hub.add_commit(f"{repo_dir.parent.name}/{repo_dir.name}", files)
            print(f"{repo_dir.parent.name}/{repo_dir.name}@{sha}")
    hub.start()
    print(f"serving on {hub.endpoint}; set HF_ENDPOINT={hub.endpoint}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    _main()
