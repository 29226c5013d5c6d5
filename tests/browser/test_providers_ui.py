"""First run and providers in the web UI: the setup panel, connecting a key, and the banner when
a provider cannot be reached."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.browser.helpers import new_session, open_session, send

pytestmark = pytest.mark.browser

KEY = "sk-browser-SECRET-0a1b2c3d4e"


def test_unreachable_provider_shows_a_banner_naming_it(ui: str, api: httpx.Client,
                                                      new_page) -> None:
    sid = new_session(api, "unreachable from the browser")
    page = new_page()
    open_session(page, ui, sid)
    page.wait_for_selector("[data-testid=model-select] option[value='down/m']", state="attached")
    page.get_by_test_id("model-select").select_option("down/m")
    started = time.monotonic()
    send(page, "hello down there")
    banner = page.get_by_test_id("session-error")
    banner.wait_for(state="visible", timeout=15_000)
    assert time.monotonic() - started < 15
    text = banner.inner_text()
    assert "'down'" in text and "API key" in text and "base URL" in text
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]", timeout=15_000)
    page.screenshot(path="/tmp/i8prov/banner.png")
    page.errors.check()


def test_setup_panel_appears_without_a_usable_model(ui: str, new_page) -> None:
    page = new_page()
    real: dict = {}

    def not_ready(route) -> None:
        response = route.fetch()
        body = response.json()
        real.update(body)
        body.update(ready=False, connected=["opencode"])
        for p in body["providers"]:
            p["connected"] = p["id"] == "opencode"
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/providers/setup", not_ready)
    page.goto(ui)
    panel = page.get_by_test_id("provider-setup")
    panel.wait_for(state="visible")
    assert "No usable model is configured" in page.get_by_test_id("provider-lead").inner_text()
    # The common providers come first, with the variable that would connect them too.
    assert page.get_by_test_id("provider-select").input_value() == "anthropic"
    assert "ANTHROPIC_API_KEY" in page.get_by_test_id("provider-hint").inner_text()
    page.screenshot(path="/tmp/i8prov/setup.png")
    page.errors.check()


def test_connecting_a_provider_with_a_key(ui: str, api: httpx.Client, new_page) -> None:
    page = new_page()
    page.goto(ui)
    page.wait_for_selector("[data-testid=connection-status][data-state=open]")
    panel = page.get_by_test_id("provider-setup")
    time.sleep(0.5)
    assert panel.is_hidden()  # the test config has a usable model
    page.get_by_test_id("providers-open").click()
    panel.wait_for(state="visible")
    page.get_by_test_id("provider-select").select_option("openai")
    page.get_by_test_id("provider-key").fill(KEY)
    page.get_by_test_id("provider-connect").click()
    page.wait_for_selector("[data-testid=provider-lead]:has-text('OpenAI')")
    assert page.get_by_test_id("provider-key").input_value() == ""
    assert KEY not in page.content()
    assert "openai" in api.get("/api/providers/setup").json()["connected"]
    page.screenshot(path="/tmp/i8prov/connected.png")
    page.errors.check()
