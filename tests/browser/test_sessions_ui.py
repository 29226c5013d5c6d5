"""Session list, routing and a big session, against the real stack."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import new_session, open_session, send, wait_idle
from tests.support.stack import wait_for

pytestmark = pytest.mark.browser


def item(page, sid: str):
    return page.locator(f"[data-testid=session-item][data-session-id='{sid}']")


def test_list_create_rename_search_route_and_delete(ui: str, api: httpx.Client, new_page) -> None:
    page = new_page()
    page.goto(f"{ui}/")
    page.get_by_test_id("new-session").wait_for()

    # Create from the page: it opens, and the URL names it.
    page.get_by_test_id("new-session").click()
    page.wait_for_url(re.compile(r"\?session=ses"))
    first = page.url.split("session=")[1]
    item(page, first).wait_for()
    assert "active" in item(page, first).get_attribute("class")
    assert api.get(f"/api/sessions/{first}").status_code == 200

    # Rename from the header, once the session has opened (before, there is nothing to rename).
    page.wait_for_selector("[data-testid=session-title]:not(:text('Loading…'))")
    page.get_by_test_id("session-rename").click()
    page.get_by_test_id("session-title-input").fill("Renamed in the browser")
    page.get_by_test_id("session-title-input").press("Enter")
    item(page, first).filter(has_text="Renamed in the browser").wait_for()
    wait_for(lambda: api.get(f"/api/sessions/{first}").json()["session"]["title"]
             == "Renamed in the browser", 10, "the relay to store the new title")

    # A session made elsewhere shows up at the top without a reload.
    second = new_session(api, "Made through the API")
    item(page, second).wait_for()
    ids = page.get_by_test_id("session-item").evaluate_all("(els) => els.map(e => e.dataset.sessionId)")
    assert ids.index(second) < ids.index(first)
    assert item(page, second).get_attribute("data-status") == "idle"
    assert item(page, second).locator(".session-dir").inner_text()  # the directory is shown

    # Search narrows the list.
    page.get_by_test_id("session-search").fill("Renamed in the")
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=session-item]')]
        .every(e => e.textContent.includes('Renamed in the'))""")
    assert item(page, first).is_visible() and item(page, second).count() == 0
    page.get_by_test_id("session-search").fill("")
    item(page, second).wait_for()

    # Routing: click, back, forward, reload.
    item(page, second).click()
    page.wait_for_url(f"{ui}/?session={second}")
    page.wait_for_selector("[data-testid=session-title]:text('Made through the API')")
    page.go_back()
    page.wait_for_selector("[data-testid=session-title]:text('Renamed in the browser')")
    page.go_forward()
    page.wait_for_selector("[data-testid=session-title]:text('Made through the API')")
    page.reload()
    page.wait_for_selector("[data-testid=session-title]:text('Made through the API')")
    page.goto(f"{ui}/#/s/{first}")
    page.wait_for_selector("[data-testid=session-title]:text('Renamed in the browser')")

    # Delete asks for a second click.
    page.goto(f"{ui}/?session={second}")
    page.wait_for_selector("[data-testid=session-title]:text('Made through the API')")
    page.get_by_test_id("session-delete").click()
    assert api.get(f"/api/sessions/{second}").status_code == 200
    page.get_by_test_id("session-delete").click()
    page.wait_for_url(f"{ui}/")
    item(page, second).wait_for(state="detached")
    wait_for(lambda: api.get(f"/api/sessions/{second}").status_code == 404, 10,
             "the relay to forget the session")
    page.errors.check()


# Test data only: wraps the page's fetch so the relay's transcript answer comes back with
# `count` older messages in front (ids that sort before any real one). Done in the page, so
# the timing is the app's and the relay's, not the test harness's.
BIG_TRANSCRIPT = r"""
(([sid, count]) => {
  const realFetch = window.fetch.bind(window);
  const pad = (n) => String(n).padStart(6, '0');
  const older = [];
  for (let n = 0; n < count; n++) {
    const id = `msg_000000000000${pad(n)}`;
    const role = n % 2 === 0 ? 'user' : 'assistant';
    const text = role === 'user' ? `Question ${n}: what about \`item_${n}\`?`
      : `Answer ${n} with **Markdown** and code:\n\n\`\`\`python\ndef f_${n}(x):\n    return x * ${n}\n\`\`\`\n`;
    const parts = [{ id: `prt_000000000000${pad(n)}a`, messageID: id, sessionID: sid, type: 'text', text }];
    if (role === 'assistant') {
      parts.push({ id: `prt_000000000000${pad(n)}b`, messageID: id, sessionID: sid, type: 'tool',
        tool: 'bash', callID: `c${n}`, state: { status: 'completed', input: { command: `echo ${n}` },
          output: `${n}\n`, title: `echo ${n}`, metadata: {} } });
    }
    older.push({ info: { id, sessionID: sid, role, time: { created: 1700000000000 + n } }, parts });
  }
  window.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    if (String(input) !== `/api/sessions/${sid}/messages`) return response;
    const real = await response.json();
    const body = JSON.stringify({ messages: older.concat(real.messages), cursor: real.cursor });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
})
"""


def test_big_session_opens_at_the_newest_and_a_delta_touches_only_its_part(
        ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider, script_key: str) -> None:
    # How fast it paints is measured by the benchmark (bench/browser.py), not asserted here.
    sid = new_session(api, "Two thousand messages")
    page = new_page()

    page.add_init_script(f"{BIG_TRANSCRIPT}({json.dumps([sid, 2000])})")
    open_session(page, ui, sid, record=True)
    assert page.evaluate("() => window.__seen.firstMessageAt") is not None
    last = page.locator("[data-testid=message]").last
    assert last.get_attribute("data-message-id") == "msg_000000000000001999"
    assert last.is_visible()  # the newest messages are on screen

    # Older messages load as the reader scrolls up.
    before = page.get_by_test_id("message").count()
    assert before < 200
    page.get_by_test_id("transcript").evaluate("(t) => { t.scrollTop = 0; }")
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=message]').length > {before}")

    # A streamed answer changes nothing but its own nodes.
    page.evaluate("""() => {
      const old = [...document.querySelectorAll('[data-testid=message]')];
      old.forEach((el) => { el.__old = true; });
      const touched = new Set();
      window.__touchedOld = touched;
      new MutationObserver((records) => {
        for (const r of records) {
          const msg = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('[data-testid=message]');
          if (msg && msg.__old) touched.add(msg.dataset.messageId);
        }
      }).observe(document.querySelector('[data-testid=transcript]'),
                 { subtree: true, childList: true, attributes: true, characterData: true });
      window.__oldCount = old.length;
    }""")
    steps = [{"text": "Streaming "}] + [{"sleep": 0.1}, {"text": "more "}] * 15
    send(page, scripted.script(script_key, [steps]))
    page.wait_for_selector("[data-role=assistant]:not([data-message-id^='msg_000']) [data-testid=part-text]")
    part = page.locator("[data-role=assistant]:not([data-message-id^='msg_000']) [data-testid=part-text]")
    part.evaluate("(el) => { window.__streamingEl = el; }")
    wait_idle(page)
    assert part.evaluate("(el) => el === window.__streamingEl")  # updated in place
    assert page.evaluate("() => [...window.__touchedOld]") == []
    assert page.evaluate("""() => [...document.querySelectorAll('[data-testid=message]')]
        .filter(e => e.__old).length""") == page.evaluate("() => window.__oldCount")
    lengths = page.evaluate("(id) => window.__seen.texts[id]", part.get_attribute("data-part-id"))
    assert len(lengths) >= 3, lengths
    page.errors.check()
