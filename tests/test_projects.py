"""Workspace roots and projects against the real relay and `opencode serve`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.stack import write_opencode_config

pytestmark = pytest.mark.integration


def test_a_session_in_a_sibling_project_runs_opencode_there_and_is_listed(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = opencode.directory.parent / f"sibling-{script_key}"
    write_opencode_config(project, scripted)  # the stack's scripted model, in its own folder
    created = api.post("/api/sessions", json={"title": "sibling", "directory": str(project)})
    assert created.status_code == 200, created.text
    session = created.json()
    assert session["directory"] == str(project)
    # A relative path: opencode resolves it against the session's directory.
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": "made-here.txt", "content": "in the sibling\n"}}],
        [{"text": "Written."}],
    ])
    answer = api.post(f"/api/sessions/{session['id']}/messages", json={"text": marker})
    assert answer.status_code == 200, answer.text
    assert (project / "made-here.txt").read_text() == "in the sibling\n"
    assert not (opencode.directory / "made-here.txt").exists()

    listed = api.get("/api/projects")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    by_dir = {p["directory"]: p for p in body["projects"]}
    assert body["default"] == str(opencode.directory)
    assert str(project) in by_dir and by_dir[str(project)]["allowed"] is True
    assert by_dir[str(project)]["sessions"] >= 1
    assert "sessions" in by_dir[str(project)]["sources"]
    assert all(root in by_dir and by_dir[root]["root"] for root in body["roots"])
    assert "/" not in by_dir  # opencode's catch-all `global` project lies outside the roots


def test_directories_outside_the_roots_are_refused_before_opencode_sees_them(
        api: httpx.Client, oc: httpx.Client, opencode: EmbeddedOpencode,
        script_key: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = Path(api.get("/api/projects").json()["roots"][0])
    inside = opencode.directory.parent / f"links-{script_key}"
    inside.mkdir()
    (inside / "out").symlink_to("/usr")
    (inside / "a-file").write_text("x")
    before = len(oc.get("/experimental/session", params={"limit": 100000}).json())
    cases = {
        "/nonexistent": "outside the workspace roots",
        "/usr": "outside the workspace roots",
        str(inside / "out"): "outside the workspace roots",
        str(inside / "out" / "lib"): "outside the workspace roots",
        f"{root}/..": "outside the workspace roots",
        f"{inside}/../../../../../../../../usr": "outside the workspace roots",
        str(inside / "missing"): "does not exist",
        str(inside / "a-file"): "is a file",
        f"{inside}/%2e%2e/%2e%2e": "directory",
    }
    for directory, reason in cases.items():
        refused = api.post("/api/sessions", json={"directory": directory})
        assert refused.status_code == 400, (directory, refused.text)
        assert refused.json()["error"]["code"] == "bad_request"
        assert reason in refused.json()["error"]["message"], (directory, refused.text)
        picker = api.get("/api/commands", params={"directory": directory})
        assert picker.status_code == 400, (directory, picker.text)
    assert len(oc.get("/experimental/session", params={"limit": 100000}).json()) == before
