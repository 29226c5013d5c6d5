"""The web UI on a phone (390×844, touch) and coming back to it: every screen fits the width,
every control is a 44 px target, the composer stays in the visual viewport; the session list
marks unread activity and pending requests; a tab that wakes says what happened meanwhile."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import (
    RECORDER,
    new_session,
    open_session,
    project_with_config,
    shot,
    wait_idle,
)
from tests.support.stack import wait_for

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}

# What a person can tap: buttons, links, fields, pickers, disclosure summaries. Inline links in
# rendered Markdown are exempt (words inside a sentence, as WCAG 2.5.8 allows); a radio or
# checkbox counts with its label, which is what the finger hits; xterm's helper textarea (how
# keys reach the terminal, not something to tap) is left out.
SCREEN = """() => {
  const root = document.documentElement;
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return false;
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.visibility === 'hidden' || cs.display === 'none') return false;
    }
    return true;
  };
  const small = [];
  const targets = document.querySelectorAll(
    'button, a[href], input:not([type=hidden]), select, textarea, summary, [role=button]');
  for (const el of targets) {
    if (!visible(el) || el.closest('.markdown') || el.classList.contains('xterm-helper-textarea')) continue;
    const target = (el.type === 'radio' || el.type === 'checkbox') && el.closest('label') || el;
    const r = target.getBoundingClientRect();
    if (r.width < 44 || r.height < 44) {
      small.push(`${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  const wide = [root, document.body, ...document.querySelectorAll('.app, .main, .sidebar, .session-pane, .center, .panels, .transcript')]
    .filter((el) => visible(el) && el.scrollWidth > el.clientWidth)
    .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth}>${el.clientWidth}`);
  return { small, wide, count: targets.length };
}"""


DRAWER_OPEN = "() => document.querySelector('.sidebar').getBoundingClientRect().x === 0"


def check_screen(page: Any, name: str) -> None:
    """No horizontal scroll, and every visible control at least 44×44 px."""
    shot(page, f"phone-{name}")
    found = page.evaluate(SCREEN)
    assert found["wide"] == [], f"{name}: scrolls sideways: {found['wide']}"
    assert found["small"] == [], f"{name}: tap targets under 44 px: {found['small']}"


def tap(page: Any, testid: str) -> None:
    page.get_by_test_id(testid).tap()


def composer_in_view(page: Any) -> bool:
    return page.evaluate("""() => {
      const vv = window.visualViewport;
      const r = document.querySelector('[data-testid=prompt-input]').getBoundingClientRect();
      return r.top >= vv.offsetTop - 1 && r.bottom <= vv.offsetTop + vv.height + 1;
    }""")


def test_phone_drawer_composer_permission_and_panels(ui: str, api: httpx.Client, new_page,
                                                     scripted: ScriptedProvider,
                                                     script_key: str) -> None:
    marker = scripted.script(script_key, [
        [{"tool": "todowrite", "args": {"todos": [
            {"content": "Check the phone", "status": "in_progress", "priority": "high"}]}}],
        [{"tool": "bash", "args": {"command": "echo phone-$((40+2))", "description": "On the phone"}}],
        [{"text": "Done on the **phone**, see [the docs](https://example.com/docs)."}],
    ])
    sid = new_session(api, title="phone session")
    page = new_page(**PHONE)
    page.goto(ui)
    item = page.locator(f"[data-testid=session-item][data-session-id='{sid}']")
    item.wait_for()
    assert page.get_by_test_id("back-to-list").is_hidden()  # no session open: the list is the page
    check_screen(page, "list")

    item.tap()
    page.wait_for_selector("[data-testid=session-title]:text('phone session')")
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", state="attached")
    assert page.get_by_test_id("session-list").is_hidden()  # the drawer is closed
    check_screen(page, "session")

    page.get_by_test_id("prompt-input").tap()
    page.get_by_test_id("prompt-input").fill(marker)
    tap(page, "send-button")
    prompt = page.get_by_test_id("permission-prompt")
    prompt.wait_for()
    check_screen(page, "permission")
    tap(page, "permission-allow-once")
    prompt.wait_for(state="detached")
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('Done on the')")
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]")
    check_screen(page, "answered")

    # The session list as a drawer over the session; picking a session closes it.
    tap(page, "back-to-list")
    page.get_by_test_id("session-list").wait_for()
    assert page.get_by_test_id("back-to-list").get_attribute("aria-expanded") == "true"
    page.wait_for_function(DRAWER_OPEN)
    drawer = page.locator(".sidebar").bounding_box()
    assert drawer["x"] + drawer["width"] <= 390
    check_screen(page, "drawer")
    page.keyboard.press("Escape")
    page.get_by_test_id("session-list").wait_for(state="hidden")
    tap(page, "back-to-list")
    page.wait_for_function(DRAWER_OPEN)
    item.tap()
    page.get_by_test_id("session-list").wait_for(state="hidden")
    assert page.get_by_test_id("transcript").is_visible()

    # The side panels (every section.panel) take the transcript's place, and give it back.
    tap(page, "toggle-panels")
    page.get_by_test_id("todo-item").wait_for()
    assert page.get_by_test_id("toggle-panels").get_attribute("aria-pressed") == "true"
    panels = page.locator("aside.panels section.panel")
    assert panels.count() >= 2
    for i in range(panels.count()):
        box = panels.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.get_by_test_id("transcript").is_hidden()
    check_screen(page, "panels")
    # the Files panel's tree and viewer, and the Terminal, work there too
    page.locator("[data-testid=file-node][data-path='opencode.json'] button").tap()
    page.wait_for_selector("[data-testid=file-viewer][data-state=text]")
    check_screen(page, "file-viewer")
    tap(page, "file-viewer-close")
    tap(page, "terminal-open")
    page.wait_for_selector("[data-testid=terminal][data-state=open]")
    check_screen(page, "terminal")
    tap(page, "terminal-end")
    page.get_by_test_id("terminal-open").wait_for()
    tap(page, "toggle-panels")
    page.get_by_test_id("transcript").wait_for()
    assert page.get_by_test_id("toggle-panels").get_attribute("aria-pressed") == "false"

    # The on-screen keyboard shrinks the visual viewport: the composer moves up with it. Chromium
    # has no keyboard to show, so the visual viewport is shrunk by zooming the page (CDP).
    assert composer_in_view(page)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setPageScaleFactor", {"pageScaleFactor": 2})
    page.wait_for_function("() => window.visualViewport.height < 500")
    page.wait_for_function("""() => getComputedStyle(document.documentElement)
        .getPropertyValue('--app-height') === Math.round(window.visualViewport.height) + 'px'""")
    assert composer_in_view(page)
    cdp.send("Emulation.setPageScaleFactor", {"pageScaleFactor": 1})
    page.wait_for_function("() => window.visualViewport.height > 800")
    assert composer_in_view(page)

    # Another session works meanwhile: the ☰ says so, and the drawer shows which one.
    other = new_session(api, title="phone other")
    page.locator(f"[data-testid=session-item][data-session-id='{other}']").wait_for(state="attached")
    assert page.get_by_test_id("back-to-list").get_attribute("data-attention") == ""
    chat = scripted.script(f"{script_key}o", [[{"text": "Meanwhile."}]])
    assert api.post(f"/api/sessions/{other}/prompt", json={"text": chat}).status_code == 202
    page.wait_for_selector("[data-testid=back-to-list][data-attention=unread]")
    assert "new activity" in page.get_by_test_id("back-to-list").get_attribute("aria-label")
    tap(page, "back-to-list")
    page.locator(f"[data-testid=session-item][data-session-id='{other}'] "
                 "[data-testid=session-unread]").wait_for()
    page.wait_for_function(DRAWER_OPEN)
    check_screen(page, "drawer-unread")
    page.errors.check()


def test_phone_question_prompt(ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider,
                               opencode: EmbeddedOpencode, script_key: str) -> None:
    project = project_with_config(opencode.directory, opencode.directory.parent / f"phone-{script_key}",
                                  question="allow")
    marker = scripted.script(script_key, [
        [{"tool": "question", "args": {"questions": [{
            "question": "Which size?", "header": "Size",
            "options": [{"label": "small", "description": "A phone"},
                        {"label": "large", "description": "A desk"}]}]}}],
        [{"text": "Small it is."}],
    ])
    sid = api.post("/api/sessions", json={"title": "phone question", "directory": str(project)}).json()["id"]
    page = new_page(**PHONE)
    page.add_init_script(RECORDER)
    page.goto(f"{ui}/?session={sid}")
    page.wait_for_selector("[data-testid=session-title]:text('phone question')")
    # the connection dot lives in the (closed) drawer on a phone
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", state="attached")
    page.get_by_test_id("prompt-input").fill(marker)
    tap(page, "send-button")
    form = page.get_by_test_id("question-prompt")
    form.wait_for()
    check_screen(page, "question")
    form.get_by_test_id("question-option").filter(has_text="small").tap()
    form.get_by_test_id("question-submit").tap()
    form.wait_for(state="detached")
    wait_idle(page)
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('Small it is.')")
    check_screen(page, "question-answered")
    page.errors.check()


def set_visibility(page: Any, state: str) -> None:
    """Hides or shows the page as a switched-away tab would (document.visibilityState)."""
    page.evaluate("""(state) => {
      Object.defineProperty(document, 'visibilityState', { value: state, configurable: true });
      Object.defineProperty(document, 'hidden', { value: state === 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }""", state)


def row(page: Any, sid: str) -> Any:
    return page.locator(f"[data-testid=session-item][data-session-id='{sid}']")


def test_coming_back_unread_waiting_and_the_wake_marker(ui: str, api: httpx.Client, new_page,
                                                        scripted: ScriptedProvider,
                                                        script_key: str) -> None:
    here = new_session(api, title="looking here")
    there = new_session(api, title="working there")
    page = new_page()
    open_session(page, ui, here)
    row(page, there).wait_for()

    # Activity in another session marks it unread; a request of it marks it waiting.
    chat = scripted.script(f"{script_key}a", [[{"text": "Something happened there."}]])
    assert api.post(f"/api/sessions/{there}/prompt", json={"text": chat}).status_code == 202
    row(page, there).get_by_test_id("session-unread").wait_for()
    assert row(page, here).get_by_test_id("session-unread").count() == 0
    wait_for(lambda: api.get(f"/api/sessions/{there}/status").json()["status"]["type"] == "idle",
             60, "the other session to finish")

    # It stays unread after a reload (what was last seen is remembered)...
    page.reload()
    row(page, there).get_by_test_id("session-unread").wait_for()

    asks = scripted.script(f"{script_key}b", [
        [{"tool": "bash", "args": {"command": "echo asked", "description": "Needs a yes"}}],
        [{"text": "Asked and answered."}],
    ])
    assert api.post(f"/api/sessions/{there}/prompt", json={"text": asks}).status_code == 202
    waiting = row(page, there).get_by_test_id("session-waiting")
    waiting.wait_for()
    # ...and also a fresh page learns that it waits.
    page.reload()
    waiting.wait_for()
    shot(page, "coming-back-list")

    # Opening it clears unread; answering clears waiting.
    row(page, there).click()
    page.get_by_test_id("permission-prompt").wait_for()
    assert row(page, there).get_by_test_id("session-unread").count() == 0
    assert waiting.is_visible()
    page.get_by_test_id("permission-allow-once").click()
    waiting.wait_for(state="detached")
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('Asked and answered.')")
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]")

    # The tab sleeps while the session works: on waking it says what happened, and it is unread
    # in the list only while hidden.
    shown = len(page.evaluate("() => window.__seen.status"))
    set_visibility(page, "hidden")
    later = scripted.script(f"{script_key}c", [[{"text": "Finished while you were away."}]])
    assert api.post(f"/api/sessions/{there}/prompt", json={"text": later}).status_code == 202
    row(page, there).get_by_test_id("session-unread").wait_for()
    wait_for(lambda: api.get(f"/api/sessions/{there}/status").json()["status"]["type"] == "idle",
             60, "the session to finish")
    # the page's own stream has brought the turn: busy, then idle again
    page.wait_for_function("(n) => window.__seen.status.length >= n + 2 && "
                           "window.__seen.status.at(-1) === 'idle'", arg=shown)
    assert page.get_by_test_id("wake-marker").count() == 0
    set_visibility(page, "visible")
    marker = page.get_by_test_id("wake-marker")
    marker.wait_for()
    assert int(marker.get_attribute("data-count")) > 2
    assert marker.get_attribute("data-finished") == "true"
    assert marker.get_attribute("data-waiting") == "false"
    assert "new events" in marker.inner_text() and "finished" in marker.inner_text()
    assert row(page, there).get_by_test_id("session-unread").count() == 0
    shot(page, "coming-back-wake")
    marker.click()
    marker.wait_for(state="detached")

    # Waking to a request: "waiting for you".
    set_visibility(page, "hidden")
    again = scripted.script(f"{script_key}d", [
        [{"tool": "bash", "args": {"command": "echo again", "description": "Another yes"}}],
        [{"text": "Done again."}],
    ])
    assert api.post(f"/api/sessions/{there}/prompt", json={"text": again}).status_code == 202
    wait_for(lambda: api.get(f"/api/sessions/{there}/requests").json()["permissions"] != [],
             60, "the permission request")
    page.get_by_test_id("permission-prompt").wait_for()
    set_visibility(page, "visible")
    marker.wait_for()
    assert marker.get_attribute("data-waiting") == "true"
    assert "waiting for you" in marker.inner_text()
    page.get_by_test_id("transcript").dispatch_event("wheel")
    marker.wait_for(state="detached")
    page.get_by_test_id("permission-allow-once").click()
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('Done again.')")
    page.errors.check()
