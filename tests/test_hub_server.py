"""Hub downloads through ``huggingface_hub`` against a local Hub stand-in on 127.0.0.1.

The server answers the requests ``snapshot_download`` / ``hf_hub_download`` make in
huggingface_hub 2.x:

- ``GET /api/models/{org}/{name}/revision/{rev}``: model info with ``sha`` and ``siblings``;
- ``GET /api/models/{org}/{name}/tree/{commit}?recursive=...``: the file list;
- ``HEAD`` / ``GET /{org}/{name}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``,
  ``ETag`` and ``Content-Length``; errors carry ``X-Error-Code`` (RepoNotFound,
  RevisionNotFound, EntryNotFound) like the Hub.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from conftest import cli, make_batch, make_model, outputs_equal, run_eval, save

from foundation.hub import CHECKPOINTS_ENV, HubDownloadError, load_pretrained


@dataclass
class FakeHub:
    """Repos as ``{repo_id: {"refs": {name: commit}, "commits": {commit: {file: bytes}}}}``."""

    repos: dict[str, dict] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, repo_id: str, folder: Path, revision: str = "main") -> str:
        """Commit every file of ``folder`` to ``repo_id`` and point ``revision`` at it."""
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
        digest = hashlib.sha1()
        for name, content in files.items():
            digest.update(name.encode() + hashlib.sha256(content).digest())
        commit = digest.hexdigest()
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        repo["commits"][commit] = files
        repo["refs"][revision] = commit
        return commit

    def file_requests(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if "/resolve/" in p]


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    timeout = 10

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def _answer(self, with_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            self._model_info(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]))
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            self._tree(f"{parts[2]}/{parts[3]}", parts[5])
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), with_body)
        else:
            self._send(404, {"error": f"no route for {path}"})

    def _commit(self, repo_id: str, revision: str) -> tuple[str, dict] | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return None
        commit = repo["refs"].get(revision, revision)
        if commit not in repo["commits"]:
            self._send(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
            return None
        return commit, repo["commits"][commit]

    def _model_info(self, repo_id: str, revision: str) -> None:
        found = self._commit(repo_id, revision)
        if found:
            commit, files = found
            siblings = [{"rfilename": name} for name in files]
            self._send(200, {"id": repo_id, "sha": commit, "siblings": siblings, "private": False})

    def _tree(self, repo_id: str, revision: str) -> None:
        found = self._commit(repo_id, revision)
        if found:
            entries = [
                {
                    "type": "file",
                    "path": name,
                    "size": len(content),
                    "oid": hashlib.sha1(content).hexdigest(),
                }
                for name, content in found[1].items()
            ]
            self._send(200, entries)

    def _resolve(self, repo_id: str, revision: str, filename: str, with_body: bool) -> None:
        found = self._commit(repo_id, revision)
        if not found:
            return
        commit, files = found
        if filename not in files or filename in self.hub.hidden:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            self._send(404, {"error": "Entry not found"}, headers)
            return
        content = files[filename]
        self.send_response(200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if with_body:
            self.wfile.write(content)

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A Hub stand-in on 127.0.0.1, with HF_ENDPOINT and a fresh HF_HUB_CACHE pointing at it."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    state = FakeHub()
    handler = type("Handler", (_Handler,), {"hub": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    bars_were_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield state
    finally:
        if not bars_were_disabled:
            enable_progress_bars()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def published(hub: FakeHub, tmp_path: Path):
    """Two revisions of ``org/pfn`` with different weights: ``main`` and ``v1``."""
    main_model, v1_model = make_model(seed=0), make_model(seed=1)
    main_commit = hub.publish("org/pfn", save(main_model, tmp_path / "main"))
    v1_commit = hub.publish("org/pfn", save(v1_model, tmp_path / "v1"), revision="v1")
    return {"main": (main_model, main_commit), "v1": (v1_model, v1_commit)}


def same_weights(a, b) -> bool:
    return all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_download_and_cache_reuse(hub: FakeHub, published):
    model, commit = published["main"]
    loaded = load_pretrained("hf-hub:org/pfn")
    assert same_weights(loaded, model)
    assert loaded.source["kind"] == "hub" and loaded.source["folder"].endswith(commit)
    assert ("GET", "/org/pfn/resolve/" + commit + "/model.safetensors") in hub.requests
    hub.requests.clear()
    again = load_pretrained("org/pfn")  # the prefix is optional
    outputs_equal(run_eval(loaded, make_batch()), run_eval(again, make_batch()))
    assert hub.file_requests() == []  # only the revision lookup
    assert hub.requests == [("GET", "/api/models/org/pfn/revision/main")]


def test_revision_pinning(hub: FakeHub, published):
    (main_model, _), (v1_model, v1_commit) = published["main"], published["v1"]
    assert same_weights(load_pretrained("org/pfn", revision="v1"), v1_model)
    assert same_weights(load_pretrained("org/pfn", revision="main"), main_model)
    hub.requests.clear()
    pinned = load_pretrained("org/pfn", revision=v1_commit)
    assert same_weights(pinned, v1_model)
    assert hub.requests == []  # a commit hash already in the cache needs no request at all
    assert not same_weights(pinned, main_model)


def test_offline_mode(hub: FakeHub, published, monkeypatch: pytest.MonkeyPatch):
    model, _ = published["main"]
    load_pretrained("org/pfn")
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_weights(load_pretrained("org/pfn"), model)
    with pytest.raises(
        HubDownloadError,
        match=r"hf-hub:org/pfn@v1.*not in the local .*cache.*"
        r"HF_HUB_OFFLINE=1",
    ):
        load_pretrained("org/pfn", revision="v1")
    with pytest.raises(HubDownloadError, match=r"hf-hub:org/other.*HF_HUB_OFFLINE=1"):
        load_pretrained("org/other")
    assert hub.requests == []


def test_missing_things_on_the_server(hub: FakeHub, published):
    with pytest.raises(HubDownloadError, match=r"hf-hub:org/nothing: repo not found"):
        load_pretrained("org/nothing")
    with pytest.raises(HubDownloadError, match=r"revision 'v9' not found"):
        load_pretrained("org/pfn", revision="v9")
    hub.hidden.add("model.safetensors")
    with pytest.raises(HubDownloadError, match=r"hf-hub:org/pfn: .*missing on the server"):
        load_pretrained("org/pfn")


def test_registered_name_pointing_to_the_hub(
    hub: FakeHub, published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    v1_model, _ = published["v1"]
    entry = tmp_path / "registry" / "pfn-tiny.hubbed"
    entry.mkdir(parents=True)
    config = json.loads((tmp_path / "v1" / "config.json").read_text())
    config["hub"] = {"repo_id": "org/pfn", "revision": "v1"}
    (entry / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "registry"))

    assert same_weights(load_pretrained("pfn-tiny.hubbed"), v1_model)
    assert cli("hub", "list") == 0
    assert "hf-hub:org/pfn@v1" in capsys.readouterr().out
    out = tmp_path / "downloaded"
    assert cli("hub", "download", "org/pfn", "--revision", "v1", "--out", str(out)) == 0
    assert same_weights(load_pretrained(out), v1_model)
    assert not (out / ".gitattributes").exists()  # only the checkpoint's own files
    assert cli("hub", "info", "hf-hub:org/pfn") == 0
    assert "backbone:    pfn-tiny" in capsys.readouterr().out


def test_delta_on_a_hub_base_pins_the_commit(hub: FakeHub, published, tmp_path: Path):
    _, main_commit = published["main"]
    tuned = load_pretrained("org/pfn")
    with torch.no_grad():
        tuned.heads["top"].net[0].weight.add_(1.0)
    delta = save(tuned, tmp_path / "delta", base="org/pfn")
    base = json.loads((delta / "config.json").read_text())["base"]
    assert base["name_or_path"] == "org/pfn" and base["revision"] == main_commit
    hub.publish("org/pfn", tmp_path / "v1")  # main moves on; the delta keeps its base
    loaded = load_pretrained(delta)
    assert same_weights(loaded, tuned)
