"""A real OpenID provider for the tests (tests/support/oidc_provider.mjs: panva's oidc-provider),
and a walk through its own login and consent forms with httpx, as a browser would."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.support.stack import RelayProcess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "support" / "oidc_provider.mjs"
CLIENT_ID = "relay"
CLIENT_SECRET = "relay-test-secret-0123456789"
SCOPES = "openid profile email groups"
ADMIN_GROUP = "relay-admins"
USERS = {
    "alice": {"name": "Alice Example", "email": "alice@example.test",
              "groups": ["engineering", ADMIN_GROUP]},
    "bob": {"name": "Bob Example", "email": "bob@example.test", "groups": ["engineering"]},
}


@dataclass
class OidcProvider:
    """`node oidc_provider.mjs` on a free loopback port; `issuer` once started."""

    redirect_uris: list[str]
    log_path: Path
    id_token_seconds: int = 3600
    clock_offset_seconds: int = 0
    extra_clients: list[dict[str, Any]] = field(default_factory=list)
    users_file: Path | None = None  # read for every sign-in (USERS when not given)
    issuer: str = ""
    process: subprocess.Popen[str] | None = None

    def start(self) -> OidcProvider:
        node = shutil.which("node")
        assert node, "node is not on PATH"
        options = {
            "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "redirect_uris": self.redirect_uris}, *self.extra_clients],
            "users": USERS, "idTokenSeconds": self.id_token_seconds,
            **({"usersFile": str(self.users_file)} if self.users_file else {}),
            "clockOffsetSeconds": self.clock_offset_seconds}
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([node, str(SCRIPT), json.dumps(options)], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.process.stdout is not None
        line = _read_line(self.process, 30)
        assert line.startswith("listening "), f"the provider did not start: see {self.log_path}"
        self.issuer = line.split()[1]
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0].strip() if found else ""


def relay_env(provider: OidcProvider, **extra: str) -> dict[str, str]:
    """A relay's settings for single sign-on at `provider` (auth on, cookies over plain HTTP)."""
    return {"RELAY_AUTH": "true", "RELAY_COOKIE_SECURE": "false",
            "RELAY_OIDC_ISSUER": provider.issuer, "RELAY_OIDC_CLIENT_ID": CLIENT_ID,
            "RELAY_OIDC_CLIENT_SECRET": CLIENT_SECRET, "RELAY_OIDC_SCOPES": SCOPES,
            "RELAY_OIDC_ADMIN_GROUP": ADMIN_GROUP, **extra}


@contextmanager
def relay_with_provider(stack_dir: Path, redis_url: str, opencode_url: str, name: str,
                        relay_settings: dict[str, str] | None = None,
                        **provider_options: Any) -> Iterator[tuple[OidcProvider, RelayProcess]]:
    """A provider of its own (its client redirecting to this relay), and a relay with RELAY_AUTH
    on signing in there (and `relay_settings`, RELAY_* variables); both stopped on leaving."""
    relay = RelayProcess(redis_url, opencode_url, stack_dir / f"{name}.log")
    provider = OidcProvider([f"{relay.url}/sso/callback"], stack_dir / f"{name}-idp.log",
                            **provider_options).start()
    relay.env.update(relay_env(provider, **(relay_settings or {})))
    try:
        yield provider, relay.start()
    finally:
        relay.stop()
        provider.stop()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_CANCEL = re.compile(r'<a href="([^"]+)"[^>]*>\s*\[ Cancel \]')


def _follow(client: httpx.Client, response: httpx.Response, until: str) -> httpx.Response:
    """Follows redirects by hand until one points at `until` (not followed) or a page comes."""
    while response.is_redirect:
        target = urljoin(str(response.url), response.headers["location"])
        if target.startswith(until):
            return response
        response = client.get(target)
    return response


def to_provider(client: httpx.Client, relay_url: str) -> httpx.Response:
    """Starts a sign-in at the relay and follows it to the provider: its login form, or the
    redirect back when the browser is signed in there already."""
    start = client.get(f"{relay_url}/sso/login")
    assert start.status_code == 303, start.text
    page = _follow(client, start, f"{relay_url}/sso/callback")
    assert page.is_redirect or 'name="login"' in page.text, page.text[:500]
    return page


def through_forms(client: httpx.Client, callback: str, page: httpx.Response,
                  login: str) -> str:
    """Fills the provider's login (and consent) forms as far as it shows them; returns the
    URL under `callback` it sends the browser to (not visited)."""
    while True:
        if page.is_redirect:
            return urljoin(str(page.url), page.headers["location"])
        action = urljoin(str(page.url), _FORM_ACTION.search(page.text)[1])  # type: ignore[index]
        if 'name="login"' in page.text:
            answer = client.post(action, data={"prompt": "login", "login": login,
                                               "password": "any"})
        else:
            answer = client.post(action, data={"prompt": "consent"})
        page = _follow(client, answer, callback)
        assert page.is_redirect or page.status_code == 200, page.text[:500]


def cancel_at_provider(client: httpx.Client, relay_url: str) -> str:
    """Starts a sign-in and presses the provider's "[ Cancel ]": the callback URL it sends."""
    page = to_provider(client, relay_url)
    answer = client.get(urljoin(str(page.url), _CANCEL.search(page.text)[1]))  # type: ignore[index]
    redirect = _follow(client, answer, f"{relay_url}/sso/callback")
    return urljoin(str(redirect.url), redirect.headers["location"])


def callback_url(client: httpx.Client, relay_url: str, login: str) -> str:
    return through_forms(client, f"{relay_url}/sso/callback", to_provider(client, relay_url),
                         login)


def sign_in(client: httpx.Client, relay_url: str, login: str) -> httpx.Response:
    """A whole sign-in: the relay's answer to the provider's redirect back."""
    return client.get(callback_url(client, relay_url, login))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def tokens_for_another_client(provider: OidcProvider, client: dict[str, Any], login: str,
                              nonce: str) -> dict[str, Any]:
    """The token response (ID token included) the provider gives another of its clients, for
    `login`: that client's own authorization-code flow with PKCE, through the same forms."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = client["redirect_uris"][0]
    with httpx.Client(timeout=30) as browser:
        page = browser.get(f"{provider.issuer}/auth", params={
            "client_id": client["client_id"], "response_type": "code", "scope": "openid",
            "redirect_uri": redirect_uri, "state": "s", "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256"})
        page = _follow(browser, page, redirect_uri)
        code = query_of(through_forms(browser, redirect_uri, page, login))["code"]
    answer = httpx.post(f"{provider.issuer}/token", auth=(client["client_id"],
                                                          client["client_secret"]),
                        data={"grant_type": "authorization_code", "code": code,
                              "redirect_uri": redirect_uri, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens
