"""Share links and export in the browser, with auth on: the owner shares, a reader who is not
signed in watches the transcript live through the link; the Export menu downloads Markdown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import shot
from tests.support.secured import bearer, make_token
from tests.support.stack import RelayProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured_ui(web_built: Path, stack_dir: Path, redis_server: EmbeddedRedis,
               opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    """A relay with RELAY_AUTH on (plain http here, so the cookie is not `Secure`)."""
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / "share-ui.log",
                           extra_env={"RELAY_AUTH": "true",
                                      "RELAY_COOKIE_SECURE": "false"}).start()
    yield process
    process.stop()


def _signed_in(new_page, relay: RelayProcess, token: str, sid: str):
    page = new_page()
    page.goto(f"{relay.url}/?session={sid}")
    page.get_by_test_id("login-token").fill(token)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=principal]")
    page.wait_for_selector("[data-testid=session-title]:text('share-ui-title')")
    return page


def _answered_session(relay: RelayProcess, scripted: ScriptedProvider, who: str, prompt: str,
                     answer: str) -> tuple[str, httpx.Client, str]:
    """A new principal's session with one prompt answered: its token, an API client, its id."""
    token = make_token(relay, f"{who}-{uuid.uuid4().hex[:6]}")
    api = httpx.Client(base_url=relay.url, headers=bearer(token), timeout=60)
    sid = api.post("/api/sessions", json={"title": "share-ui-title"}).json()["id"]
    marker = scripted.script(f"{who[:3]}{uuid.uuid4().hex[:8]}", [[{"text": answer}]])
    assert api.post(f"/api/sessions/{sid}/messages",
                    json={"text": f"{prompt} {marker}"}).status_code == 200
    return token, api, sid


def test_a_shared_link_shows_the_transcript_live_to_a_reader_who_is_not_signed_in(
        secured_ui: RelayProcess, new_page, scripted: ScriptedProvider) -> None:
    token, api, sid = _answered_session(secured_ui, scripted, "sharer", "first-prompt",
                                        "the-first-answer")

    owner = _signed_in(new_page, secured_ui, token, sid)
    owner.get_by_test_id("share-button").click()
    link = owner.get_by_test_id("share-link")
    link.wait_for()
    url = link.input_value()
    assert url.startswith(f"{secured_ui.url}/share/{sid}.")
    assert owner.locator("[data-testid=share-list] li").count() == 1
    shot(owner, "share-popover")

    reader = new_page()  # a fresh context: no login cookie
    reader.goto(url)
    reader.wait_for_selector("[data-testid=session-title]:text('share-ui-title')")
    reader.wait_for_selector("[data-testid=transcript]:has-text('the-first-answer')")
    reader.wait_for_selector("[data-testid=connection-status][data-state=open]")
    assert reader.get_by_test_id("login-token").count() == 0
    for absent in ("prompt-input", "share-button", "export-menu", "session-delete",
                   "session-rename"):
        assert reader.get_by_test_id(absent).count() == 0 or \
            not reader.get_by_test_id(absent).is_visible(), absent

    live = scripted.script(f"sui{uuid.uuid4().hex[:8]}", [[{"text": "the-live-answer"}]])
    assert api.post(f"/api/sessions/{sid}/prompt",
                    json={"text": f"live-prompt {live}"}).status_code == 202
    reader.wait_for_selector("[data-testid=transcript]:has-text('the-live-answer')")
    reader.wait_for_selector("[data-testid=transcript]:has-text('live-prompt')")
    shot(reader, "share-reader")

    # Revoked from the owner's popover: the reader's page says the link no longer works.
    owner.get_by_test_id("share-revoke").click()
    owner.wait_for_selector("[data-testid=share-list] li", state="detached")
    reader.wait_for_selector("[data-testid=share-gone]", timeout=45_000)
    assert "revoked" in reader.get_by_test_id("share-gone").inner_text()
    shot(reader, "share-revoked")
    fresh = new_page()
    fresh.goto(url)
    assert "revoked" in fresh.get_by_test_id("share-gone").inner_text()
    owner.errors.check()
    reader.errors.check()


def test_the_export_menu_downloads_markdown_with_the_prompt(
        secured_ui: RelayProcess, new_page, scripted: ScriptedProvider, tmp_path: Path) -> None:
    token, api, sid = _answered_session(secured_ui, scripted, "exporter", "exported-prompt",
                                        "exported-answer")
    page = _signed_in(new_page, secured_ui, token, sid)
    page.get_by_test_id("export-menu").locator("summary").click()
    page.get_by_test_id("export-markdown").wait_for()
    shot(page, "export-menu")
    with page.expect_download() as info:
        page.get_by_test_id("export-markdown").click()
    download = info.value
    assert download.suggested_filename == f"share-ui-title-{sid}.md"
    saved = tmp_path / "export.md"
    download.save_as(saved)
    text = saved.read_text()
    assert text.startswith("# share-ui-title\n")
    assert "exported-prompt" in text and "exported-answer" in text
    with page.expect_download() as info:
        page.get_by_test_id("export-menu").locator("summary").click()
        page.get_by_test_id("export-json").click()
    assert info.value.suggested_filename.endswith(f"{sid}.json")
    page.errors.check()
