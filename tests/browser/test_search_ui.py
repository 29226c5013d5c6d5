"""Search across sessions in the web UI: type a word, click the hit, see the message."""

from __future__ import annotations

import uuid

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import shot
from tests.support.stack import wait_for

pytestmark = pytest.mark.browser


def test_a_search_hit_opens_the_session_at_the_highlighted_message(
        ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider) -> None:
    word = "zorblat" + uuid.uuid4().hex[:8]
    created = api.post("/api/sessions", json={"title": "search ui"})
    assert created.status_code == 200, created.text
    sid = created.json()["id"]
    answers = [f"The answer you need is {word}, as <i>promised</i>."] + [
        "\n\n".join(f"Filler paragraph {i}.{j} with nothing to find." for j in range(25))
        for i in range(3)]
    mids = []
    for answer in answers:
        marker = scripted.script(f"sui{uuid.uuid4().hex[:8]}", [[{"text": answer}]])
        reply = api.post(f"/api/sessions/{sid}/messages", json={"text": f"tell me {marker}"})
        assert reply.status_code == 200, reply.text
        mids.append(reply.json()["info"]["id"])
    wait_for(lambda: api.get("/api/search", params={"q": word}).json()["results"], 30,
             "the answer indexed")

    page = new_page()
    page.goto(f"{ui}/")
    page.get_by_test_id("session-search").fill(word[:10])  # the start of the word, as typed
    results = page.get_by_test_id("search-results")
    hit = results.get_by_test_id("search-result")
    hit.wait_for()
    assert hit.count() == 1
    assert "search ui" in hit.inner_text()
    mark = hit.locator("mark")
    assert mark.inner_text() == word
    assert hit.locator("i").count() == 0 and "<i>promised</i>" in hit.inner_text()  # not HTML
    shot(page, "search-results")

    hit.click()
    found = page.locator(f"[data-testid=message][data-message-id='{mids[0]}']")
    found.wait_for()
    page.wait_for_selector(f"[data-message-id='{mids[0]}'][data-found=true]")
    assert f"session={sid}" in page.url and f"message={mids[0]}" in page.url
    assert page.locator("[data-found]").count() == 1
    # On screen: inside the transcript's visible area, although later answers fill it.
    page.wait_for_function("""(mid) => {
        const el = document.querySelector(`[data-message-id='${mid}']`);
        const box = el.getBoundingClientRect();
        const view = el.closest('[data-testid=transcript]') || document.documentElement;
        const port = view.getBoundingClientRect();
        return box.bottom > port.top && box.top < port.bottom;
    }""", arg=mids[0])
    last = page.locator(f"[data-message-id='{mids[-1]}']")
    assert not last.evaluate("""(el) => {
        const box = el.getBoundingClientRect();
        const port = (el.closest('[data-testid=transcript]') || document.documentElement)
            .getBoundingClientRect();
        return box.top < port.bottom && box.bottom > port.top;
    }""")  # the newest answer is out of view: the page scrolled to the hit, not the end
    assert word in found.inner_text()
    # The word itself is marked in the message (CSS Custom Highlight API: the DOM is untouched).
    marked = page.evaluate("""() => [...(CSS.highlights.get('search-hit') || [])]
        .map(range => [range.toString(), range.startContainer.parentElement
                       .closest('[data-testid=message]').dataset.messageId])""")
    assert marked == [[word, mids[0]]]
    shot(page, "search-jump")
