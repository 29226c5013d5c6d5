"""The file tree and viewer routes against the real opencode: listing, reading, refusing."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.secured import bearer, make_token
from tests.support.stack import RelayProcess, git_project

pytestmark = pytest.mark.integration

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
                       "GAhKmMIQAAAABJRU5ErkJggg==")
SECRET = "top-secret-outside-the-project"


def _project(opencode: EmbeddedOpencode, scripted: ScriptedProvider, key: str) -> Path:
    """A git project beside opencode's own, with a folder, an image, a binary file, a file too
    large to view, and symbolic links that lead out of it."""
    project = git_project(opencode.directory.parent / f"files-{key}", scripted)
    outside = opencode.directory.parent / f"outside-{key}"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (project / "docs").mkdir()
    (project / "docs" / "guide.md").write_text("# Guide\n")
    (project / "pixel.png").write_bytes(PNG)
    (project / "blob.bin").write_bytes(bytes(range(256)) * 8)
    (project / "huge.log").write_text("x" * (3 * 1024 * 1024))
    (project / "escape.txt").symlink_to(outside / "secret.txt")
    (project / "escape-dir").symlink_to(outside)
    return project


def _session(client: httpx.Client, directory: Path, headers: dict[str, str] | None = None) -> str:
    created = client.post("/api/sessions", json={"title": "files", "directory": str(directory)},
                          headers=headers)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_the_tree_lists_the_project_and_the_viewer_shows_what_the_agent_wrote(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    written = project / "src" / "hello.py"
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(written),
                                    "content": "def hello() -> str:\n    return 'hi'\n"}}],
        [{"text": "Wrote hello.py."}]])
    sid = _session(api, project)
    answer = api.post(f"/api/sessions/{sid}/messages", json={"text": f"write hello {marker}"})
    assert answer.status_code == 200, answer.text
    assert written.is_file()

    root = api.get(f"/api/sessions/{sid}/tree")
    assert root.status_code == 200, root.text
    body = root.json()
    assert body["directory"] == str(project) and body["path"] == ""
    entries = {e["name"]: e for e in body["entries"]}
    assert {"docs", "src", "pixel.png", "blob.bin", "opencode.json"} <= set(entries)
    assert "escape.txt" not in entries  # opencode leaves links out of the directory out
    assert entries["src"] == {"name": "src", "path": "src", "type": "directory",
                              "ignored": False}
    kinds = [e["type"] for e in body["entries"]]
    assert kinds == sorted(kinds, key=lambda k: k != "directory")  # folders first
    # One folder per request: the root does not list what is inside src.
    assert all("/" not in e["path"] for e in body["entries"])

    src = api.get(f"/api/sessions/{sid}/tree", params={"path": "src"}).json()
    assert [e["path"] for e in src["entries"]] == ["src/hello.py"]
    assert api.get(f"/api/sessions/{sid}/tree", params={"path": "./docs/"}).json()[
        "entries"][0]["path"] == "docs/guide.md"

    shown = api.get(f"/api/sessions/{sid}/file", params={"path": "src/hello.py"})
    assert shown.status_code == 200, shown.text
    assert shown.json()["type"] == "text"
    # opencode trims the content's trailing whitespace.
    assert shown.json()["content"] == "def hello() -> str:\n    return 'hi'"
    assert shown.json()["size"] == written.stat().st_size

    image = api.get(f"/api/sessions/{sid}/file", params={"path": "pixel.png"}).json()
    assert image["type"] == "image" and image["mime"] == "image/png"
    assert base64.b64decode(image["content"]) == PNG
    binary = api.get(f"/api/sessions/{sid}/file", params={"path": "blob.bin"}).json()
    assert binary["type"] == "binary" and binary["size"] == 2048 and "content" not in binary
    huge = api.get(f"/api/sessions/{sid}/file", params={"path": "huge.log"}).json()
    assert huge["type"] == "too_large" and huge["size"] == 3 * 1024 * 1024
    assert huge["limit"] == 2 * 1024 * 1024 and "content" not in huge

    missing = api.get(f"/api/sessions/{sid}/file", params={"path": "src/nope.py"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    folder = api.get(f"/api/sessions/{sid}/file", params={"path": "src"})
    assert folder.status_code == 400 and "folder" in folder.json()["error"]["message"]
    not_a_folder = api.get(f"/api/sessions/{sid}/tree", params={"path": "src/hello.py"})
    assert not_a_folder.status_code == 400
    assert api.get(f"/api/sessions/{sid}/file").status_code == 422  # path is required


TRAVERSALS = [
    "../../etc/passwd", "../outside/secret.txt", "/etc/passwd", "//etc/passwd",
    "docs/../../outside/secret.txt", "docs/../..", "..", "~/.bashrc", "C:/Windows/win.ini",
    "..\\..\\etc\\passwd", "docs/guide.md\x00.png",
]
# Sent as they are, unencoded by the client: the relay decodes once, so these become `..` paths
# (refused by their spelling) or, encoded twice, names that exist nowhere (404).
RAW_QUERIES = [
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2E%2E/%2E%2E/etc/passwd", "..%2f..%2fetc%2fpasswd",
    "%2fetc%2fpasswd", "docs%2f..%2f..%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cetc%5cpasswd", "docs%00",
]


def test_paths_that_leave_the_directory_are_refused(
        api: httpx.Client, oc: httpx.Client, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    sid = _session(api, project)
    for route in ("tree", "file"):
        for path in TRAVERSALS:
            answer = api.get(f"/api/sessions/{sid}/{route}", params={"path": path})
            assert answer.status_code == 400, (route, path, answer.text)
            assert answer.json()["error"]["code"] == "bad_request"
        for raw in RAW_QUERIES:
            answer = api.get(f"/api/sessions/{sid}/{route}?path={raw}")
            assert answer.status_code in (400, 404), (route, raw, answer.text)
            assert "root:" not in answer.text and SECRET not in answer.text
    # A symbolic link that leads outside: refused by where it leads, also through a folder link.
    for route, path in (("file", "escape.txt"), ("tree", "escape-dir"),
                        ("file", "escape-dir/secret.txt")):
        answer = api.get(f"/api/sessions/{sid}/{route}", params={"path": path})
        assert answer.status_code == 400, (route, path, answer.text)
        assert "outside the session's directory" in answer.json()["error"]["message"]
        assert SECRET not in answer.text
    # opencode itself refuses these too, but as an unexpected error (500), which the relay would
    # otherwise pass on as a 502: the relay answers first.
    for path in ("../outside/secret.txt", "/etc/passwd", "escape.txt"):
        direct = oc.get("/file/content", params={"path": path, "directory": str(project)})
        assert direct.status_code >= 400 and SECRET not in direct.text, (path, direct.text)


def test_another_user_cannot_read_the_files(
        secured: RelayProcess, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    owner, other = make_token(secured, "owner"), make_token(secured, "other")
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        sid = _session(client, project, bearer(owner))
        for route, path in (("tree", ""), ("tree", "docs"), ("file", "docs/guide.md")):
            mine = client.get(f"/api/sessions/{sid}/{route}", params={"path": path},
                              headers=bearer(owner))
            assert mine.status_code == 200, mine.text
            theirs = client.get(f"/api/sessions/{sid}/{route}", params={"path": path},
                                headers=bearer(other))
            assert theirs.status_code == 404, theirs.text
            assert "Guide" not in theirs.text and "guide.md" not in theirs.text
            anonymous = client.get(f"/api/sessions/{sid}/{route}", params={"path": path})
            assert anonymous.status_code == 401
