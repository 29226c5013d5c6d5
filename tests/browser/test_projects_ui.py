"""The project picker: a new session starts in the picked project; the list shows its sessions."""

from __future__ import annotations

import re

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import new_session, shot
from tests.support.stack import git_project

pytestmark = pytest.mark.browser


def test_pick_a_project_create_a_session_there_and_filter_the_list(
        ui: str, api: httpx.Client, oc: httpx.Client, new_page, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    # A git project beside the stack's own, opened once by opencode: one of opencode's projects.
    project = git_project(opencode.directory.parent / f"picked-{script_key}", scripted)
    known = oc.get("/project/current", params={"directory": str(project)})
    assert known.status_code == 200 and known.json()["worktree"] == str(project), known.text
    elsewhere = new_session(api, f"default project {script_key}")  # in the default directory

    page = new_page()
    page.goto(f"{ui}/")
    picker = page.get_by_test_id("project-select")
    picker.locator(f"option[value='{project}']").wait_for(state="attached")
    assert picker.locator(f"option[value='{opencode.directory}']").count() == 1  # the default
    assert picker.locator("option[value='/']").count() == 0  # opencode's `global`: not a root's
    item = "[data-testid=session-item][data-session-id='{}']"
    page.wait_for_selector(item.format(elsewhere))  # "All projects" shows every session

    picker.select_option(str(project))
    page.wait_for_selector(item.format(elsewhere), state="detached")  # filtered by project
    assert f"picked-{script_key}" in page.get_by_test_id("project-where").inner_text()
    page.get_by_test_id("new-session").click()
    page.wait_for_url(re.compile(r"\?session=ses"))
    sid = page.url.split("session=")[1]
    session = api.get(f"/api/sessions/{sid}").json()["session"]
    assert session["directory"] == str(project)
    page.wait_for_selector(item.format(sid))
    assert page.locator("[data-testid=session-item]").count() == 1
    shot(page, "project-picker")

    # The choice is remembered; "All projects" shows the others again.
    page.reload()
    page.get_by_test_id("project-select").locator(f"option[value='{project}']").wait_for(
        state="attached")
    assert page.get_by_test_id("project-select").input_value() == str(project)
    page.get_by_test_id("project-select").select_option("")
    page.wait_for_selector(item.format(elsewhere))
    page.wait_for_selector(item.format(sid))
    page.errors.check()


def test_another_folder_starts_a_session_there_or_says_why_not(
        ui: str, api: httpx.Client, new_page, opencode: EmbeddedOpencode,
        script_key: str) -> None:
    plain = opencode.directory.parent / f"typed-{script_key}"  # no git, no session: not listed
    plain.mkdir()
    page = new_page()
    page.goto(f"{ui}/")
    picker = page.get_by_test_id("project-select")
    picker.locator("option[value='other']").wait_for(state="attached")
    assert picker.locator(f"option[value='{plain}']").count() == 0

    # Outside the roots: the relay's reason shows, and no session is made.
    picker.select_option(label="Another folder…")
    typed = page.get_by_test_id("project-other")
    typed.fill("/usr")
    shot(page, "project-other-form")
    typed.press("Enter")
    toast = page.get_by_test_id("toast").filter(has_text="outside the workspace roots")
    toast.wait_for()
    assert "session=" not in page.url
    assert page.get_by_test_id("project-select").input_value() == ""  # still "All projects"

    typed.fill(f"{plain}/")
    page.get_by_test_id("project-other-start").click()
    page.wait_for_url(re.compile(r"\?session=ses"))
    sid = page.url.split("session=")[1]
    assert api.get(f"/api/sessions/{sid}").json()["session"]["directory"] == str(plain)
    # The folder is a project now (the caller's session is in it), picked, and filters the list.
    page.wait_for_function(
        "dir => document.querySelector('[data-testid=project-select]').value === dir", arg=str(plain))
    assert page.get_by_test_id("project-other").is_hidden()
    page.wait_for_selector(f"[data-testid=session-item][data-session-id='{sid}']")
    assert page.locator("[data-testid=session-item]").count() == 1
    shot(page, "project-another-folder")
    page.errors.check()
