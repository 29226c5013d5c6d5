"""Single sign-on in Chromium: the relay's sign-in page -> "Sign in with SSO" -> the real
provider's (panva's oidc-provider) login and consent forms -> back in the app, signed in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from tests.browser.helpers import shot
from tests.support.oidc import OidcProvider, relay_with_provider
from tests.support.stack import RelayProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sso_ui(web_built: Path, stack_dir: Path, redis_server: EmbeddedRedis,
           opencode: EmbeddedOpencode) -> Iterator[tuple[OidcProvider, RelayProcess]]:
    with relay_with_provider(stack_dir, redis_server.url, opencode.url, "sso-ui") as both:
        yield both


def _at_provider_sign_in(page, provider: OidcProvider, login: str) -> None:
    """The provider's own forms: its login form, then its consent form (when it asks)."""
    page.wait_for_url(re.compile(re.escape(provider.issuer) + "/interaction/"))
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("correct horse")
    shot(page, "sso-provider-login")
    page.locator("button[type=submit]").click()
    page.wait_for_load_state()
    if page.url.startswith(provider.issuer):
        page.get_by_role("button", name="Continue").click()


def test_sign_in_with_sso_through_the_providers_forms_then_sign_out(
        sso_ui: tuple[OidcProvider, RelayProcess], new_page) -> None:
    provider, relay = sso_ui
    page = new_page()
    page.goto(f"{relay.url}/")
    page.get_by_test_id("login-token").wait_for()  # the token form stays beside it
    sso = page.get_by_test_id("login-sso")
    sso.wait_for()
    assert sso.inner_text() == "Sign in with SSO"
    shot(page, "sso-login-page")
    sso.click()

    _at_provider_sign_in(page, provider, "alice")
    page.wait_for_url(f"{relay.url}/")
    principal = page.get_by_test_id("principal")
    principal.wait_for()
    assert principal.inner_text() == "Alice Example"
    assert page.get_by_test_id("login").count() == 0

    # Signed in for real: a session made from the page belongs to this login.
    page.get_by_test_id("new-session").click()
    page.wait_for_url(re.compile(r"\?session=ses"))
    sid = page.url.split("session=")[1]
    page.wait_for_selector("[data-testid=session-title]:not(:text('Loading…'))")
    shot(page, "sso-signed-in")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ocr_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    mine = httpx.get(f"{relay.url}/api/sessions/{sid}", cookies={"ocr_session": cookie["value"]})
    assert mine.status_code == 200, mine.text

    # Sign out ends the relay login: the sign-in page again, and the cookie is dead.
    page.get_by_test_id("logout").click()
    page.get_by_test_id("login-sso").wait_for()
    assert httpx.get(f"{relay.url}/api/me",
                     cookies={"ocr_session": cookie["value"]}).status_code == 401
    page.errors.check()


def test_a_declined_sign_in_shows_the_refusal_page(
        sso_ui: tuple[OidcProvider, RelayProcess], new_page) -> None:
    provider, relay = sso_ui
    page = new_page()
    page.goto(f"{relay.url}/")
    page.get_by_test_id("login-sso").click()
    page.wait_for_url(re.compile(re.escape(provider.issuer) + "/interaction/"))
    page.get_by_role("link", name="[ Cancel ]").click()
    error = page.get_by_test_id("sign-in-error")
    error.wait_for()
    assert page.url.startswith(f"{relay.url}/sso/callback")
    assert error.get_attribute("data-code") == "sign_in_refused"
    assert "access_denied" in page.get_by_test_id("sign-in-error-message").inner_text()
    shot(page, "sso-refused")
    page.get_by_test_id("sign-in-again").click()
    page.get_by_test_id("login-sso").wait_for()
    page.errors.check()
