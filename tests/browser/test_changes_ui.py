"""The Changes panel against real opencode: a git project's working tree with its diffs, and a
plain folder's files from the session's tool calls."""

from __future__ import annotations

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import open_session, send, shot, wait_idle
from tests.support.stack import git_project, write_opencode_config

pytestmark = pytest.mark.browser


def _session(api: httpx.Client, directory: object) -> str:
    created = api.post("/api/sessions", json={"title": "changes ui", "directory": str(directory)})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_a_write_in_a_git_project_shows_in_the_changes_with_its_diff(
        ui: str, api: httpx.Client, new_page, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = git_project(opencode.directory.parent / f"changes-ui-git-{script_key}", scripted)
    (project / ".git" / "info" / "exclude").write_text("opencode.json\n")
    notes = project / "notes.txt"
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(notes), "content": "first\nsecond\n"}}],
        # The agent keeps working after the write: the panel shows it before the turn ends.
        [{"sleep": 4}, {"text": "Wrote the notes."}]])
    sid = _session(api, project)
    page = new_page()
    open_session(page, ui, sid)
    changes = page.get_by_test_id("changes-list")
    page.wait_for_selector("[data-testid=changes-list][data-source=git]")
    assert changes.inner_text() == "No changes on disk."

    send(page, f"write the notes {marker}")
    item = page.locator("[data-testid=change-item][data-path='notes.txt']")
    item.wait_for(timeout=20_000)
    assert page.get_by_test_id("status-indicator").get_attribute("data-status") == "busy"
    assert item.get_attribute("data-status") == "added"
    assert "+2" in item.inner_text()
    item.locator("summary").click()
    diff = item.get_by_test_id("diff-view")
    diff.wait_for()
    assert "+first" in diff.inner_text() and "+second" in diff.inner_text()
    shot(page, "changes-git")
    wait_idle(page)
    # Still listed, its diff still open, once the turn has ended.
    assert item.get_by_test_id("diff-view").inner_text().count("+first") == 1

    # Undo: opencode takes the file back, and the panel follows.
    page.locator("[data-testid=message][data-role=user]").first \
        .get_by_test_id("message-undo").click()
    item.wait_for(state="detached")
    assert not notes.exists()
    assert changes.inner_text() == "No changes on disk."
    page.errors.check()


def test_a_write_in_a_plain_folder_shows_from_the_tool_calls(
        ui: str, api: httpx.Client, new_page, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = opencode.directory.parent / f"changes-ui-plain-{script_key}"
    write_opencode_config(project, scripted)
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(project / "draft.md"),
                                    "content": "# Draft\nhello\n"}}],
        [{"text": "Drafted."}]])
    sid = _session(api, project)
    page = new_page()
    open_session(page, ui, sid)
    page.wait_for_selector("[data-testid=changes-list][data-source=tools]")
    assert page.get_by_test_id("changes-list").inner_text() == "No files written or edited yet."

    send(page, f"draft it {marker}")
    wait_idle(page)
    item = page.locator("[data-testid=change-item][data-path='draft.md']")
    item.wait_for()
    assert item.get_attribute("data-status") == "added"
    item.locator("summary").click()
    diff = item.get_by_test_id("diff-view")
    diff.wait_for()
    assert "+# Draft" in diff.inner_text() and "+hello" in diff.inner_text()
    shot(page, "changes-plain")
    # A reload reads the same from the stored tool parts.
    page.reload()
    page.locator("[data-testid=change-item][data-path='draft.md']").wait_for()
    page.errors.check()
