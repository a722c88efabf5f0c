"""Hub downloads through ``huggingface_hub`` against a local Hub stand-in on 127.0.0.1.

The server answers the requests ``snapshot_download`` / ``hf_hub_download`` make in
huggingface_hub 2.x:

- ``GET /api/models/{org}/{name}/revision/{rev}``: model info with ``sha`` and ``siblings``;
- ``GET /api/models/{org}/{name}/tree/{commit}?recursive=...``: the file list;
- ``HEAD`` / ``GET /{org}/{name}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``,
  ``ETag`` and ``Content-Length``; errors carry ``X-Error-Code`` (RepoNotFound,
  RevisionNotFound, EntryNotFound) like the Hub.

and the requests ``HfApi.create_repo`` / ``create_branch`` / ``upload_folder`` make (with a
Bearer token, and without Xet storage, which the Hub alone serves):

- ``POST /api/repos/create``, ``POST /api/models/{org}/{name}/branch/{branch}``;
- ``POST /api/validate-yaml``: the model card's metadata, checked as the Hub checks it (license
  id, ``license_name`` of ``other``, ``base_model`` repo ids, lists of strings, ``model-index``);
- ``POST /api/models/{org}/{name}/preupload/{rev}``: ``lfs`` for weights, ``regular`` otherwise;
- ``POST /{org}/{name}.git/info/lfs/objects/batch`` and ``PUT /lfs-upload/{oid}`` (basic
  transfer, sha256 checked);
- ``POST /api/models/{org}/{name}/commit/{rev}``: the ndjson commit (``file``, ``lfsFile``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
import yaml
from conftest import cli, make_batch, make_model, outputs_equal, run_eval, save

from foundation import load_pretrained
from foundation.hub import (
    CHECKPOINTS_ENV,
    CheckpointError,
    HubDownloadError,
    push_to_hub,
)


@dataclass
class FakeHub:
    """Repos as ``{repo_id: {"refs": {name: commit}, "commits": {commit: {file: bytes}}}}``."""

    repos: dict[str, dict] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: str = "hf_local_test_token"
    lfs: dict[str, bytes] = field(default_factory=dict)
    commit_messages: list[str] = field(default_factory=list)

    def publish(self, repo_id: str, folder: Path, revision: str = "main") -> str:
        """Commit every file of ``folder`` to ``repo_id`` and point ``revision`` at it."""
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        return self.commit(repo_id, files, revision)

    def commit(self, repo_id: str, files: dict[str, bytes], revision: str = "main") -> str:
        """Store ``files`` (plus ``.gitattributes``) as a commit and point ``revision`` at it."""
        files = {".gitattributes": GITATTRIBUTES, **files}
        digest = hashlib.sha1()
        for name, content in sorted(files.items()):
            digest.update(name.encode() + hashlib.sha256(content).digest())
        commit = digest.hexdigest()
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        repo["commits"][commit] = files
        repo["refs"][revision] = commit
        return commit

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision``."""
        repo = self.repos[repo_id]
        return repo["commits"][repo["refs"].get(revision, revision)]

    def file_requests(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if "/resolve/" in p]


GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
HUB_LICENSES = {
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
    "cc-by-nc-4.0", "gpl-3.0", "lgpl-3.0", "mpl-2.0", "unlicense", "other",
}  # fmt: skip
"""A part of the Hub's list of license ids (lower case), enough for these tests."""
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def card_metadata_errors(content: str) -> list[str]:
    """What the Hub's metadata validation (``/api/validate-yaml``) refuses in a README.md."""
    from huggingface_hub.repocard_data import model_index_to_eval_results

    match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
    if not match:
        return []
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        return [f"invalid YAML: {error}"]
    errors = []
    license_id = data.get("license")
    if license_id is not None and license_id not in HUB_LICENSES:
        errors.append(f'"license" must be one of the Hub license ids, found {license_id!r}')
    if license_id == "other" and not data.get("license_name"):
        errors.append('"license_name" is required with license: other')
    for key in ("tags", "datasets"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors.append(f'"{key}" must be a list of strings, found {value!r}')
    bases = data.get("base_model", [])
    for base in [bases] if isinstance(bases, str) else bases:
        if not isinstance(base, str) or not _REPO.match(base):
            errors.append(f'"base_model" must be a model id, found {base!r}')
    if "model-index" in data:
        try:
            model_index_to_eval_results(data["model-index"])
        except (KeyError, TypeError, ValueError) as error:
            errors.append(f'"model-index" is invalid: {error!r}')
    return errors

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

    # ---------------------------------------------------------------------------- uploads
    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        body = self._body()
        parts = path.strip("/").split("/")
        if path == "/api/validate-yaml":
            errors = card_metadata_errors(json.loads(body)["content"])
            status = 400 if errors else 200
            self._send(status, {"errors": [{"message": e} for e in errors], "warnings": []})
        elif not self._authorized():
            return
        elif path == "/api/repos/create":
            self._create_repo(json.loads(body))
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "branch":
            payload = json.loads(body or b"{}")
            self._create_branch(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]), payload)
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular",
                    "shouldIgnore": False,
                }
                for f in files
            ]
            self._send(200, {"files": modes})
        elif (
            len(parts) == 6
            and parts[1].endswith(".git")
            and parts[2:]
            == [
                "info",
                "lfs",
                "objects",
                "batch",
            ]
        ):
            self._lfs_batch(json.loads(body))
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
            self._commit_ndjson(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]), body)
        else:
            self._send(404, {"error": f"no route for POST {path}"})

    def do_PUT(self) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        body = self._body()
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "lfs-upload":
            if hashlib.sha256(body).hexdigest() != parts[1]:
                self._send(400, {"error": "sha256 of the upload differs from its oid"})
                return
            with self.hub.lock:
                self.hub.lfs[parts[1]] = body
            self._send(200, {})
        else:
            self._send(404, {"error": f"no route for PUT {path}"})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.hub.token}":
            return True
        self._send(401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _endpoint(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _create_repo(self, payload: dict) -> None:
        name, organization = payload["name"], payload.get("organization")
        repo_id = f"{organization}/{name}" if organization else name
        if repo_id in self.hub.repos:
            url = f"{self._endpoint()}/{repo_id}"  # the Hub names the existing repo
            self._send(409, {"error": "You already created this model repo", "url": url})
            return
        with self.hub.lock:
            self.hub.commit(repo_id, {})
        self._send(200, {"url": f"{self._endpoint()}/{repo_id}"})

    def _create_branch(self, repo_id: str, branch: str, payload: dict) -> None:
        found = self._commit(repo_id, payload.get("startingPoint") or "main")
        if not found:
            return
        refs = self.hub.repos[repo_id]["refs"]
        if branch in refs:
            self._send(409, {"error": "Reference already exists"})
            return
        refs[branch] = found[0]
        self._send(200, {})

    def _lfs_batch(self, payload: dict) -> None:
        objects = []
        for item in payload["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.hub.lfs:  # already stored objects get no action
                href = f"{self._endpoint()}/lfs-upload/{item['oid']}"
                entry["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(entry)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.git-lfs+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _commit_ndjson(self, repo_id: str, revision: str, body: bytes) -> None:
        found = self._commit(repo_id, revision)
        if not found:
            return
        files = {k: v for k, v in found[1].items() if k != ".gitattributes"}
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                self.hub.commit_messages.append(value["summary"])
            elif item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    self._send(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                    return
                files[value["path"]] = self.hub.lfs[value["oid"]]
            else:
                self._send(400, {"error": f"unsupported commit operation {item['key']!r}"})
                return
        with self.hub.lock:
            commit = self.hub.commit(repo_id, files, revision)
        url = f"{self._endpoint()}/{repo_id}/commit/{commit}"
        self._send(200, {"commitUrl": url, "commitOid": commit, "pullRequestUrl": None})

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
    monkeypatch.setenv("HF_TOKEN", state.token)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # Xet storage is the Hub's own
    # as if HF_ENDPOINT had been set before huggingface_hub was imported: the constants it
    # derives then (1.x builds a commit's repo URL from them)
    endpoint = os.environ["HF_ENDPOINT"]
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
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
    # a commit hash already in the cache downloads no file (huggingface_hub 2.x makes no request
    # at all, 1.0 still asks for the revision's info)
    assert hub.file_requests() == []
    assert set(hub.requests) <= {("GET", f"/api/models/org/pfn/revision/{v1_commit}")}
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


# ------------------------------------------------------------------------------------ uploads
# huggingface_hub's LFS upload passes bytes to httpx as data= (its own call, not ours)
UPLOAD_WARNING = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def test_shipped_cards_pass_the_hub_metadata_checks():
    root = Path(__file__).resolve().parents[1] / "checkpoints"
    cards = sorted(root.glob("*/README.md"))
    assert cards
    for card in cards:
        assert card_metadata_errors(card.read_text(encoding="utf-8")) == [], card


@UPLOAD_WARNING
def test_push_then_load(hub: FakeHub, tmp_path: Path, capsys):
    """``foundation hub push`` uploads through a real client; the repo loads like the folder."""
    model = make_model(seed=3)
    folder = save(model, tmp_path / "pfn", card={"license": "Apache-2.0", "datasets": ["org/jets"]})
    (folder / "train.log").write_text("not part of the checkpoint\n")
    assert cli("hub", "push", str(folder), "org/pushed") == 0
    assert "/org/pushed/commit/" in capsys.readouterr().out
    files = hub.files("org/pushed")
    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "SHA256SUMS",
        "config.json",
        "model.safetensors",
    ]
    for name in ("README.md", "SHA256SUMS", "config.json", "model.safetensors"):
        assert files[name] == (folder / name).read_bytes()
    uploads = [path for method, path in hub.requests if method == "PUT"]
    weights_sha = hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert uploads == [f"/lfs-upload/{weights_sha}"]  # the weights went through LFS
    assert ("POST", "/api/validate-yaml") in hub.requests  # the card was checked by the server
    assert same_weights(load_pretrained("org/pushed"), model)

    assert push_to_hub(folder, "org/pushed", revision="v1", commit_message="v1").oid
    assert hub.commit_messages[-1] == "v1"
    assert same_weights(load_pretrained("org/pushed", revision="v1"), model)


@UPLOAD_WARNING
def test_card_edits_on_the_hub_keep_loading(hub: FakeHub, tmp_path: Path):
    """SHA256SUMS covers config.json and the weights only: a card edited on the Hub loads."""
    from huggingface_hub import HfApi

    model = make_model(seed=4)
    folder = save(model, tmp_path / "pfn", card={"license": "MIT"})
    push_to_hub(folder, "org/edited")
    card = hub.files("org/edited")["README.md"].decode() + "\n## Added on the Hub\n"
    api = HfApi(endpoint=os.environ["HF_ENDPOINT"])
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="org/edited")
    assert hub.files("org/edited")["README.md"].decode().endswith("## Added on the Hub\n")
    loaded = load_pretrained("org/edited")
    assert same_weights(loaded, model)
    assert "README.md" not in (Path(loaded.source["folder"]) / "SHA256SUMS").read_text()


def test_push_refusals(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The server refuses a card with invalid metadata (the old `license: "Apache-2.0"`) and a
    push without a token; a folder that does not verify is not sent. Nothing is committed."""
    from huggingface_hub.errors import HfHubHTTPError

    folder = save(make_model(), tmp_path / "pfn")
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("---\n", '---\nlicense: "Apache-2.0"\n', 1))
    with pytest.raises((HfHubHTTPError, ValueError), match=r"license"):
        push_to_hub(folder, "org/refused")
    assert "README.md" not in hub.files("org/refused")
    (folder / "README.md").write_text(card)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(HfHubHTTPError, match=r"401|Invalid credentials"):
        push_to_hub(folder, "org/anonymous")
    assert "org/anonymous" not in hub.repos
    monkeypatch.setenv("HF_TOKEN", hub.token)
    hub.requests.clear()
    (folder / "model.safetensors").write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match=r"model.safetensors: sha256 mismatch"):
        cli("hub", "push", str(folder), "org/corrupt")
    assert hub.requests == []  # verified before anything is sent
