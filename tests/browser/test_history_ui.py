"""Undo/redo, fork, usage and compact in the web UI, against the real stack."""

from __future__ import annotations

import re

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import open_session, send, shot, wait_idle
from tests.support.stack import git_project, wait_for

pytestmark = pytest.mark.browser



def test_undo_redo_fork_usage_and_compact(ui: str, api: httpx.Client, new_page,
                                          opencode: EmbeddedOpencode,
                                          scripted: ScriptedProvider, script_key: str) -> None:
    project = git_project(opencode.directory.parent / f"git-ui-{script_key}", scripted)
    target = project / "plan.txt"
    target.write_text("first plan\n")
    marker = scripted.script(script_key, [
        [{"text": "Rewriting the plan."},
         {"tool": "write", "args": {"filePath": str(target), "content": "second plan\n"}}],
        [{"text": "The plan is rewritten."}]])
    created = api.post("/api/sessions", json={"title": "history ui", "directory": str(project)})
    sid = created.json()["id"]
    page = new_page()
    open_session(page, ui, sid)
    prompt = f"rewrite the plan {marker}"
    send(page, prompt)
    wait_idle(page)
    assert target.read_text() == "second plan\n"

    # Usage: per answer and for the session, with the model's context window.
    page.wait_for_selector("[data-testid=message-usage]")
    meter = page.get_by_test_id("context-meter")
    # Two answers of 10 + 5 tokens each (the bar re-reads the totals once they settle).
    page.wait_for_selector("[data-testid=usage-tokens][data-output='10']")
    page.wait_for_selector("[data-testid=context-meter][data-limit='1000'][data-used='15']")
    assert meter.get_attribute("data-percent") == "1.5"
    assert page.get_by_test_id("usage-tokens").inner_text() == "30 tokens"
    assert page.get_by_test_id("usage-cost").inner_text() == "$0.00"

    # Undo: the file is back, the messages are dimmed under a banner, the prompt is back.
    user = page.locator("[data-testid=message][data-role=user]").first
    user.get_by_test_id("message-undo").click()
    page.get_by_test_id("revert-banner").wait_for()
    wait_for(lambda: target.read_text() == "first plan\n", 10, "the file to be restored")
    assert page.locator("[data-testid=message][data-reverted=true]").count() == 3
    assert page.get_by_test_id("prompt-input").input_value() == prompt
    shot(page, "history-undone")

    # Redo: the file and the messages come back.
    page.get_by_test_id("redo-button").click()
    page.get_by_test_id("revert-banner").wait_for(state="detached")
    wait_for(lambda: target.read_text() == "second plan\n", 10, "the file to be redone")
    assert page.locator("[data-testid=message][data-reverted=true]").count() == 0
    page.get_by_test_id("prompt-input").fill("")

    # Fork from the first answer: a new session, listed and opened, with the messages so far.
    page.locator("[data-testid=message][data-role=assistant]").first \
        .get_by_test_id("message-fork").click()
    page.wait_for_url(re.compile(r"session=(?!" + sid + r")ses"))
    forked = page.url.split("session=")[1]
    page.locator(f"[data-testid=session-item][data-session-id='{forked}']").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=message]').length === 2")
    assert api.get(f"/api/sessions/{forked}").status_code == 200
    shot(page, "history-forked")

    # Compact the original: a summary answer follows.
    page.goto(f"{ui}/?session={sid}")
    page.wait_for_selector("[data-testid=context-meter][data-limit='1000']")
    before = page.locator("[data-testid=message]").count()
    page.get_by_test_id("compact-button").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=message]').length >= {before + 2}")
    wait_for(lambda: any(m["info"].get("summary") is True for m in
                         api.get(f"/api/sessions/{sid}/messages").json()["messages"]),
             30, "the summary")
    page.wait_for_selector("[data-testid=compact-button]:not([disabled])")
    shot(page, "history-compacted")

    # Undo from the start, then prompt anew: opencode drops the undone messages, and so does
    # the page.
    page.locator("[data-testid=message][data-role=user]").first \
        .get_by_test_id("message-undo").click()
    page.get_by_test_id("revert-banner").wait_for()
    wait_for(lambda: target.read_text() == "first plan\n", 10, "the file to be restored")
    fresh = scripted.script(f"{script_key}n", [[{"text": "A new plan instead."}]])
    send(page, f"plan anew {fresh}")
    page.get_by_test_id("revert-banner").wait_for(state="detached")
    page.wait_for_function("""() => {
        const all = [...document.querySelectorAll('[data-testid=message]')];
        return all.length === 2 && !all.some(m => m.dataset.reverted)
            && all[1].textContent.includes('A new plan instead.');
    }""")
    assert len(api.get(f"/api/sessions/{sid}/messages").json()["messages"]) == 2
    shot(page, "history-replaced")
    page.errors.check()
