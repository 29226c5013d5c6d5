"""Teams in the browser, with auth on: a member picks a team in `team-select` and starts a
session; a teammate sees it appear live and drives it; a viewer reads it with the prompt box
off and says why; the session list names each session's team."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import shot
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import RelayProcess, wait_for

pytestmark = pytest.mark.browser

SECURED_ENV = {"RELAY_COOKIE_SECURE": "false"}  # plain http here
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}


def _signed_in(new_page: Any, relay: RelayProcess, token: str, path: str = "/",
               **context: Any) -> Any:
    page = new_page(**context)
    page.goto(f"{relay.url}{path}")
    page.get_by_test_id("login-token").fill(token)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=principal]")
    return page


def test_a_session_started_for_a_team_shows_up_for_teammates_by_role(
        web_built: Any, secured: RelayProcess, new_page: Any,
        scripted: ScriptedProvider) -> None:
    suffix = uuid.uuid4().hex[:6]
    tokens = {who: make_token(secured, f"{who}-{suffix}") for who in ("alice", "bob", "vera")}
    ids = {who: token_id(secured, f"{who}-{suffix}") for who in tokens}
    for args in (("create", "alpha"), ("create", "beta"),
                 ("add", "alpha", ids["alice"], "member"), ("add", "beta", ids["alice"], "admin"),
                 ("add", "alpha", ids["bob"], "member"), ("add", "alpha", ids["vera"], "viewer")):
        done = relay_cli(secured, "team", *args)
        assert done.returncode == 0, done.stderr

    bob = _signed_in(new_page, secured, tokens["bob"])
    alice = _signed_in(new_page, secured, tokens["alice"])
    picker = alice.get_by_test_id("team-select")
    picker.wait_for()
    # Two teams to start sessions in: no default, as the relay has none.
    wait_for(lambda: picker.locator("option").count() == 3, what="alice's teams")
    assert picker.input_value() == ""
    assert picker.locator("option").all_inner_texts() == [
        "Just me (no team)", "alpha (member)", "beta (admin)"]
    picker.select_option("alpha")
    assert alice.get_by_test_id("team-role").inner_text() == "You are a member of alpha"
    alice.get_by_test_id("new-session").click()
    alice.wait_for_url("**/?session=ses_*")
    sid = alice.url.split("session=")[1]
    badge = alice.get_by_test_id("session-team")
    badge.wait_for()
    assert badge.inner_text() == "team alpha · member"
    shot(alice, "teams-new-session")

    # Bob's list shows it live (the global stream carries team sessions to the team).
    bob.wait_for_selector(f"[data-testid=session-item][data-session-id='{sid}']")
    bob.click(f"[data-testid=session-item][data-session-id='{sid}']")
    bob.get_by_test_id("session-team").wait_for()
    assert not bob.get_by_test_id("prompt-input").is_disabled()
    assert not bob.get_by_test_id("composer-readonly").is_visible()
    for action in ("share-button", "session-rename", "session-delete"):  # the admins' or hers
        assert not bob.get_by_test_id(action).is_visible(), action
        assert alice.get_by_test_id(action).is_visible(), action
    marker = scripted.script(f"tui{uuid.uuid4().hex[:8]}", [[{"text": "bob-drove-this"}]])
    bob.get_by_test_id("prompt-input").fill(marker)
    bob.get_by_test_id("send-button").click()
    alice.wait_for_selector("[data-testid=transcript]:has-text('bob-drove-this')")

    # The agent asks to run a command: bob, a member, sees it but answering is alice's (or a
    # team admin's); the relay refuses his answer as well.
    ask = scripted.script(f"tui{uuid.uuid4().hex[:8]}", [
        [{"tool": "bash", "args": {"command": "echo team-$((40+2))",
                                   "description": "Team command"}}],
        [{"text": "the team command ran"}]])
    alice.get_by_test_id("prompt-input").fill(ask)
    alice.get_by_test_id("send-button").click()
    asked = bob.get_by_test_id("permission-prompt")
    asked.wait_for()
    assert bob.get_by_test_id("permission-allow-once").is_disabled()
    assert bob.get_by_test_id("request-readonly").inner_text() == \
        "Only the session's creator or an admin of team alpha can answer."
    shot(bob, "teams-member-permission")
    request_id = asked.get_attribute("data-request-id")
    answer = httpx.post(f"{secured.url}/api/sessions/{sid}/permissions/{request_id}",
                        json={"reply": "once"}, headers=bearer(tokens["bob"]), timeout=30)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "role_refused"
    alice.get_by_test_id("permission-prompt").wait_for()
    assert alice.get_by_test_id("request-readonly").count() == 0
    alice.get_by_test_id("permission-allow-once").click()
    asked.wait_for(state="detached")
    bob.wait_for_selector("[data-testid=transcript]:has-text('the team command ran')")

    # Vera, a viewer, reads along; the prompt box is off and says why; her team is not pickable.
    vera = _signed_in(new_page, secured, tokens["vera"], f"/?session={sid}")
    vera.wait_for_selector("[data-testid=transcript]:has-text('bob-drove-this')")
    reason = vera.get_by_test_id("composer-readonly")
    reason.wait_for()
    assert reason.inner_text() == ("You are a viewer of team alpha: you can read this session "
                                   "and follow it live, but not prompt it.")
    assert vera.get_by_test_id("prompt-input").is_disabled()
    assert vera.get_by_test_id("send-button").is_disabled()
    assert vera.get_by_test_id("session-team").inner_text() == "team alpha · viewer"
    viewer_option = vera.get_by_test_id("team-select").locator("option[value=alpha]")
    assert viewer_option.is_disabled()
    shot(vera, "teams-viewer")
    # The relay refuses her prompt anyway.
    refused = httpx.post(f"{secured.url}/api/sessions/{sid}/prompt", json={"text": "hi"},
                         headers=bearer(tokens["vera"]), timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_refused"


def test_the_session_list_shows_each_sessions_team(
        web_built: Any, secured: RelayProcess, new_page: Any) -> None:
    suffix = uuid.uuid4().hex[:6]
    tokens = {who: make_token(secured, f"{who}-{suffix}") for who in ("rita", "ravi")}
    ids = {who: token_id(secured, f"{who}-{suffix}") for who in tokens}
    for args in (("create", "red"), ("add", "red", ids["rita"], "admin"),
                 ("add", "red", ids["ravi"], "member")):
        done = relay_cli(secured, "team", *args)
        assert done.returncode == 0, done.stderr

    def row(page: Any, sid: str) -> Any:
        found = page.locator(f"[data-testid=session-item][data-session-id='{sid}']")
        found.wait_for()
        return found

    ravi = _signed_in(new_page, secured, tokens["ravi"])
    with httpx.Client(base_url=secured.url, headers=bearer(tokens["rita"]), timeout=60) as api:
        made = api.post("/api/sessions", json={"title": "red team work", "team": "red"})
        assert made.status_code == 200, made.text
        alone = api.post("/api/sessions", json={"title": "rita alone", "team": None})
        assert alone.status_code == 200, alone.text
    sid, own = made.json()["id"], alone.json()["id"]
    # Live: ravi's list gets the new session from the global stream, with its team.
    badge = row(ravi, sid).get_by_test_id("session-row-team")
    badge.wait_for()
    assert badge.inner_text() == "red"
    # Loaded: rita's list (GET /api/sessions) names it too; her own session has no team.
    for context in ({}, PHONE):
        rita = _signed_in(new_page, secured, tokens["rita"], **context)
        badge = row(rita, sid).get_by_test_id("session-row-team")
        badge.wait_for()
        assert badge.inner_text() == "red" and badge.get_attribute("title") == "Team red"
        assert row(rita, own).get_by_test_id("session-row-team").count() == 0
        assert badge.is_visible()
        shot(rita, "teams-list-phone" if context else "teams-list")
