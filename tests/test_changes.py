"""Changes on disk against real opencode: a git project's working tree (opencode's /vcs), a
plain folder's files from the session's tool parts, and the "files changed" notice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.stack import (
    EventCollector,
    RelayProcess,
    git_project,
    wait_for,
    write_opencode_config,
)

pytestmark = pytest.mark.integration


def _session(api: httpx.Client, directory: Path) -> str:
    created = api.post("/api/sessions", json={"title": "changes", "directory": str(directory)})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def _changes(api: httpx.Client, sid: str) -> dict:
    response = api.get(f"/api/sessions/{sid}/changes")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _diff(api: httpx.Client, sid: str, path: str) -> httpx.Response:
    return api.get(f"/api/sessions/{sid}/changes/diff", params={"path": path})


def test_a_git_projects_changes_are_its_working_tree_and_a_working_session_hears_of_them(
        api: httpx.Client, relay: RelayProcess, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = git_project(opencode.directory.parent / f"changes-git-{script_key}", scripted)
    # A clean tree: only what the agent does shows.
    (project / ".git" / "info" / "exclude").write_text("opencode.json\n")
    branch = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=project, check=True,
                            capture_output=True, text=True).stdout.strip()
    notes = project / "notes.txt"
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(notes), "content": "first\nsecond\n"}}],
        # Still working after the write: the notice must come while the session is busy.
        [{"sleep": 1.5}, {"text": "Wrote the notes."}]])
    sid = _session(api, project)
    assert _changes(api, sid) == {"source": "git", "branch": branch, "files": []}
    stream = EventCollector(f"{relay.url}/api/sessions/{sid}/events").start()
    try:
        answer = api.post(f"/api/sessions/{sid}/messages", json={"text": f"write {marker}"})
        assert answer.status_code == 200, answer.text
        notice = stream.wait_for_type("relay.files.changed")
        assert notice["properties"]["sessionID"] == sid
        assert str(notes) in notice["properties"]["files"]
        stream.wait_for_type("session.idle")
        types = stream.types()
        # It came while the agent worked, and opencode's own file events stayed out.
        assert types.index("relay.files.changed") < types.index("session.idle")
        assert not {"file.edited", "file.watcher.updated"} & set(types)
    finally:
        stream.close()
    found = _changes(api, sid)
    assert found["source"] == "git"
    assert found["files"] == [{"path": "notes.txt", "status": "added", "additions": 2,
                               "deletions": 0}]
    diff = _diff(api, sid, "notes.txt")
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert body["path"] == "notes.txt" and body["status"] == "added"
    assert "+first\n+second" in body["patch"]

    # Committed: the working tree is clean again, and the panel says so.
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "add", "notes.txt"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "notes"], cwd=project, check=True)
    wait_for(lambda: _changes(api, sid)["files"] == [], 10, "a clean working tree")
    missing = _diff(api, sid, "notes.txt")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_plain_folders_changes_come_from_the_sessions_tool_parts(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = opencode.directory.parent / f"changes-plain-{script_key}"
    write_opencode_config(project, scripted)
    (project / "old.txt").write_text("one\ntwo\n")
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(project / "new.txt"), "content": "a\nb\n"}}],
        [{"tool": "edit", "args": {"filePath": str(project / "old.txt"), "oldString": "one",
                                   "newString": "ONE"}}],
        [{"text": "Done."}]])
    sid = _session(api, project)
    assert _changes(api, sid) == {"source": "tools", "branch": None, "files": []}
    answer = api.post(f"/api/sessions/{sid}/messages", json={"text": f"edit {marker}"})
    assert answer.status_code == 200, answer.text

    def listed() -> list[dict] | None:
        files = _changes(api, sid)["files"]
        return files if len(files) == 2 else None
    files = wait_for(listed, 20, "both files in the changes")
    assert files == [{"path": "new.txt", "status": "added", "additions": 2, "deletions": 0},
                     {"path": "old.txt", "status": "modified", "additions": 1, "deletions": 1}]
    edited = _diff(api, sid, "old.txt").json()
    assert "-one" in edited["patch"] and "+ONE" in edited["patch"]
    assert "+a\n+b" in _diff(api, sid, "new.txt").json()["patch"]
    # Another session in the same folder changed nothing itself.
    assert _changes(api, _session(api, project))["files"] == []


def test_changes_refuse_bad_input(api: httpx.Client, opencode: EmbeddedOpencode) -> None:
    assert api.get("/api/sessions/ses_nothere/changes").status_code == 404
    assert api.get("/api/sessions/bad!/changes").status_code == 400
    sid = _session(api, opencode.directory)
    for params, status in [({}, 422), ({"path": ""}, 422), ({"path": "x" * 5000}, 422),
                           ({"path": "not-changed.txt"}, 404)]:
        response = api.get(f"/api/sessions/{sid}/changes/diff", params=params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["message"]
