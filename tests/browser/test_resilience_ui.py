"""The page through trouble: cut connections, a refusing relay, reloads, two tabs."""

from __future__ import annotations

import time

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import (
    new_session,
    open_session,
    page_transcript,
    send,
    transcript_from_api,
    wait_api_idle,
    wait_idle,
)
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.browser


def slow_script(pieces: int, pause: float = 0.1) -> list[list[dict]]:
    steps: list[dict] = [{"text": "Counting: "}]
    for n in range(pieces):
        steps += [{"sleep": pause}, {"text": f"n{n:03d} "}]
    return [steps]


def words(text: str) -> str:
    return " ".join(text.split())  # Markdown rendering changes only whitespace here


def expected_texts(api: httpx.Client, sid: str) -> list[tuple[str, str, list[str]]]:
    return [(m["info"]["id"], m["info"]["role"],
             [words(p["text"]) for p in m["parts"] if p["type"] == "text" and not p.get("synthetic")])
            for m in transcript_from_api(api, sid)]


def shown_texts(page) -> list[tuple[str, str, list[str]]]:
    return [(m["id"], m["role"], [words(t["text"]) for t in m["texts"]])
            for m in page_transcript(page)]


def test_cut_stream_recovers_without_gaps_or_doubles(proxy: CuttableProxy, api: httpx.Client,
                                                     new_page, scripted: ScriptedProvider,
                                                     script_key: str) -> None:
    marker = scripted.script(script_key, slow_script(60))
    sid = new_session(api)
    page = new_page()
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if f"/api/sessions/{sid}/events" in r.url else None)
    open_session(page, proxy.url, sid)
    send(page, marker)
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('n005')")

    # A network drop: the browser reconnects by itself with Last-Event-ID.
    assert proxy.cut() >= 1
    page.wait_for_selector("[data-testid=connection-status][data-state=reconnecting]")
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", timeout=15_000)
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('n025')")

    # The relay refuses for a while: EventSource gives up and the app resumes with ?after=.
    proxy.refuse(3.0)
    proxy.cut()
    page.wait_for_selector("[data-testid=connection-status][data-state=reconnecting]")
    time.sleep(3.0)
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", timeout=20_000)

    wait_api_idle(api, sid)
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]", timeout=20_000)
    assert shown_texts(page) == expected_texts(api, sid)
    answer = shown_texts(page)[-1][2][0]
    numbers = [w for w in answer.split() if w.startswith("n")]
    assert numbers == [f"n{n:03d}" for n in range(60)]  # every piece once, in order
    # The first stream started at the transcript's cursor; a later one resumed further on.
    afters = [u.split("after=")[1] for u in streams if "after=" in u]
    assert len(afters) >= 2 and afters[-1] != afters[0], streams
    states = page.evaluate("() => window.__seen.connection")
    assert states[:2] == ["connecting", "open"] and states.count("reconnecting") >= 2, states
    page.errors.check()


def test_reload_mid_stream_shows_everything_once(ui: str, api: httpx.Client, new_page,
                                                 scripted: ScriptedProvider,
                                                 script_key: str) -> None:
    marker = scripted.script(script_key, slow_script(40))
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('n010')")
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-state=open]")
    page.wait_for_selector("[data-testid=status-indicator][data-status=busy]", timeout=5_000)
    wait_api_idle(api, sid)
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]", timeout=20_000)
    assert shown_texts(page) == expected_texts(api, sid)
    page.errors.check()


def test_two_pages_on_one_session_stay_in_step(ui: str, api: httpx.Client, new_page,
                                               scripted: ScriptedProvider,
                                               script_key: str) -> None:
    marker = scripted.script(script_key, [
        [{"text": "Listing first. "}, {"sleep": 0.3},
         {"tool": "bash", "args": {"command": "echo two-tabs", "description": "Echo"}}],
        [{"text": "Both tabs saw it."}],
    ])
    sid = new_session(api)
    first, second = new_page(), new_page()
    open_session(first, ui, sid)
    open_session(second, ui, sid)
    send(first, marker)

    # The permission prompt shows in both; answering in one clears it in the other.
    first.get_by_test_id("permission-prompt").wait_for()
    second.get_by_test_id("permission-prompt").wait_for()
    second.get_by_test_id("permission-allow-once").click()
    first.get_by_test_id("permission-prompt").wait_for(state="detached")

    wait_idle(first)
    wait_idle(second)
    assert shown_texts(first) == shown_texts(second) == expected_texts(api, sid)
    assert page_transcript(first) == page_transcript(second)
    for page in (first, second):
        page.wait_for_selector("[data-testid=part-tool][data-tool=bash][data-status=completed]")

    # A rename in one tab reaches the other tab's header and list.
    first.get_by_test_id("session-rename").click()
    first.get_by_test_id("session-title-input").fill("Seen by both")
    first.get_by_test_id("session-title-input").press("Enter")
    second.wait_for_selector("[data-testid=session-title]:text('Seen by both')")
    second.wait_for_selector(f"[data-testid=session-item][data-session-id='{sid}']:has-text('Seen by both')")
    first.errors.check()
    second.errors.check()
