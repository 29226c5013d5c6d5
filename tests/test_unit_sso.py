"""Single sign-on's parts without a provider process: the ID token's checks against keys and
tokens made here (signature, iss, aud, exp, iat, nonce, alg), discovery's cache, the principal
an identity becomes, the login record that carries it, and the settings' rules."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.requests import Request

from opencode_relay.config import Settings
from opencode_relay.errors import ProviderFailed, ProviderUnavailable, SignInRefused
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.security.oidc import ClientConfig, OpenIdProvider
from opencode_relay.security.principal import Principal
from opencode_relay.security.sso import (
    MAX_GROUPS,
    SingleSignOn,
    build_sso,
    groups_of,
    principal_id,
    principal_of,
)
from opencode_relay.security.sso_routes import redirect_uri
from opencode_relay.security.tokens import TokenStore, digest
from opencode_relay.store.keys import Keys
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import fake, relay_client, relay_settings, workspace

pytestmark = pytest.mark.unit
__all__ = ["fake", "workspace"]  # fixtures, used by name

ISSUER = "https://idp.example.test"
CLIENT = "relay"
NONCE = "n-0123456789"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
DISCOVERY = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
             "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
             "userinfo_endpoint": f"{ISSUER}/me", "response_types_supported": ["code"],
             "id_token_signing_alg_values_supported": ["RS256"]}


class Idp:
    """What the provider's endpoints answer, and how often each was asked."""

    def __init__(self, keys: list[RSAKey] | None = None,
                 discovery: dict[str, Any] | None = None) -> None:
        self.keys = keys or [KEY]
        self.discovery = discovery or DISCOVERY
        self.calls: dict[str, int] = {}
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[path] = self.calls.get(path, 0) + 1
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [k.as_dict(private=False)
                                                      for k in self.keys]})
        return httpx.Response(404)


def _provider(idp: Idp, client_id: str = CLIENT, issuer: str = ISSUER) -> OpenIdProvider:
    return OpenIdProvider(ClientConfig(issuer, client_id, "secret", "openid"),
                          transport=httpx.MockTransport(idp))


def _token(key: RSAKey = KEY, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300,
              "nonce": NONCE, **changes}
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


async def _refused(check: Callable[[], Any], reason: str) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        await check()
    assert caught.value.reason == reason, caught.value.message
    return caught.value


async def test_a_good_id_token_passes_and_every_bad_one_is_refused_with_its_reason() -> None:
    provider = _provider(Idp())
    claims = await provider.id_token_claims(_token(), NONCE, None)
    assert claims["sub"] == "u-1"

    now = int(time.time())
    cases = {
        "wrong_audience": _token(aud="another-client"),
        "issuer_mismatch": _token(iss="https://evil.example.test"),
        "expired": _token(iat=now - 900, exp=now - 120),  # past the minute of leeway
        "nonce_mismatch": _token(nonce="from-another-sign-in"),
        "issued_in_future": _token(iat=now + 600, exp=now + 900),
        "bad_signature": _token(RSAKey.generate_key(2048, parameters={"kid": "k1"})),
    }
    for reason, token in cases.items():
        refused = await _refused(lambda t=token: provider.id_token_claims(t, NONCE, None), reason)
        if reason == "wrong_audience":
            assert "another-client" in refused.message and "'relay'" in refused.message
    # Within the leeway, a token just expired still passes (clocks differ a little).
    assert await provider.id_token_claims(_token(exp=now - 20), NONCE, None)
    # The same token, for a relay with another client id, is not for it.
    await _refused(lambda: _provider(Idp(), client_id="other").id_token_claims(
        _token(), NONCE, None), "wrong_audience")
    # A missing nonce is not a match either.
    await _refused(lambda: provider.id_token_claims(_token(nonce=None), NONCE, None),
                   "nonce_mismatch")
    await provider.aclose()


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_unsigned_and_shared_secret_tokens_are_refused() -> None:
    provider = _provider(Idp())
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300,
              "nonce": NONCE}
    unsigned = f"{_b64({'alg': 'none'})}.{_b64(claims)}."
    await _refused(lambda: provider.id_token_claims(unsigned, NONCE, None), "invalid_id_token")
    # Signed with the client secret (HS256): only the provider's published keys count.
    shared = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key("secret" * 6))
    await _refused(lambda: provider.id_token_claims(shared, NONCE, None), "invalid_id_token")
    await _refused(lambda: provider.id_token_claims("not-a-jwt", NONCE, None),
                   "invalid_id_token")
    await provider.aclose()


async def test_discovery_is_cached_and_keys_refetched_once_when_rotated() -> None:
    idp = Idp()
    provider = _provider(idp)
    for _ in range(3):
        await provider.id_token_claims(_token(), NONCE, None)
    assert idp.calls == {"/.well-known/openid-configuration": 1, "/jwks": 1}
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256", "use": "sig"})
    idp.keys = [rotated]
    assert await provider.id_token_claims(_token(rotated), NONCE, None)
    assert idp.calls["/jwks"] == 2
    # A key nobody publishes: fetched once more, then refused.
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k3"})
    await _refused(lambda: provider.id_token_claims(_token(stranger), NONCE, None),
                   "invalid_id_token")
    assert idp.calls["/jwks"] == 3
    await provider.aclose()


async def test_a_provider_down_or_misnamed_fails_clearly_and_is_not_cached() -> None:
    idp = Idp()
    idp.down = True
    provider = _provider(idp)
    with pytest.raises(ProviderUnavailable):
        await provider.metadata()
    idp.down = False
    assert (await provider.metadata())["issuer"] == ISSUER  # the failure was not kept
    await provider.aclose()

    misnamed = _provider(Idp(), issuer=ISSUER + "/")
    with pytest.raises(ProviderFailed) as caught:
        await misnamed.metadata()
    assert caught.value.reason == "issuer_mismatch"
    await misnamed.aclose()
    partial = _provider(Idp(discovery={"issuer": ISSUER}))
    with pytest.raises(ProviderFailed):
        await partial.metadata()
    await partial.aclose()


async def test_the_authorization_url_asks_for_a_code_with_pkce_and_nonce() -> None:
    provider = _provider(Idp())
    url = httpx.URL(await provider.authorization_url("https://relay/sso/callback", "st", "nn",
                                                     "v" * 64))
    params = dict(url.params)
    assert url.path == "/auth"
    assert params["response_type"] == "code" and params["client_id"] == CLIENT
    assert params["state"] == "st" and params["nonce"] == "nn"
    assert params["code_challenge_method"] == "S256" and params["code_challenge"] != "v" * 64
    assert params["redirect_uri"] == "https://relay/sso/callback"
    await provider.aclose()


def test_a_person_is_one_id_per_issuer_and_sub_with_name_groups_and_admin() -> None:
    claims = {"sub": "u-1", "name": "Ada", "email": "ada@x.test", "groups": ["eng", "ops"]}
    ada = principal_of(claims, ISSUER, "groups", "ops")
    assert ada == Principal(principal_id(ISSUER, "u-1"), "Ada", True, groups=("eng", "ops"))
    assert principal_of(claims, ISSUER, "groups", None).admin is False
    assert principal_of(claims, ISSUER, "groups", "eng").id == ada.id
    assert principal_id("https://other.test", "u-1") != ada.id  # another issuer: another person
    assert principal_id(ISSUER, "u-2") != ada.id
    assert ada.id.startswith("oidc_") and ada.id[5:].isalnum() and len(ada.id) == 37
    # Name falls back to email, then the username, then the subject.
    assert principal_of({"sub": "u", "email": "e@x"}, ISSUER, "groups", None).name == "e@x"
    assert principal_of({"sub": "u", "name": " "}, ISSUER, "groups", None).name == "u"
    # Groups: a list or one string, only strings, deduplicated, bounded.
    assert groups_of({"roles": "admins"}, "roles") == ("admins",)
    assert groups_of({"g": ["a", 1, None, "a", "", "b"]}, "g") == ("a", "b")
    assert groups_of({"g": {"a": 1}}, "g") == ()
    assert len(groups_of({"g": [f"g{i}" for i in range(1000)]}, "g")) == MAX_GROUPS


async def test_a_login_record_carries_the_principal_with_its_groups(redis: Redis,
                                                                    keys: Keys) -> None:
    tokens = TokenStore(redis, keys)
    ada = Principal(principal_id(ISSUER, "u-1"), "Ada", False, groups=("eng", "ops"))
    cookie = await tokens.login_as(ada, 60)
    assert await tokens.resolve_login(cookie) == ada
    assert 0 < await redis.pttl(keys.auth_login(digest(cookie))) <= 60_000
    await tokens.logout(cookie)
    assert await tokens.resolve_login(cookie) is None
    # Token logins are unchanged: they still point at (and end with) their token.
    info, secret = await tokens.create("tok-user")
    made = await tokens.login(secret, 60)
    assert made is not None and await tokens.resolve_login(made[1]) == info.principal()
    await tokens.revoke(info.id)
    assert await tokens.resolve_login(made[1]) is None


async def test_a_provider_error_other_than_a_refusal_is_the_providers_failure(
        redis: Redis, keys: Keys) -> None:
    settings = Settings(oidc_issuer=ISSUER, oidc_client_id=CLIENT, redis_url="redis://x")
    sso = SingleSignOn(_provider(Idp()), redis, keys, TokenStore(redis, keys), settings)
    started = await sso.begin("https://relay/sso/callback")
    state = dict(httpx.URL(started.url).params)["state"]
    with pytest.raises(ProviderFailed) as caught:
        await sso.finish({"state": state, "error": "server_error"}, started.binding)
    assert caught.value.reason == "provider_error"
    await sso.aclose()


def test_settings_take_issuer_and_client_together_and_scopes_with_openid() -> None:
    with pytest.raises(ValidationError, match="set together"):
        Settings(oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="openid"):
        Settings(oidc_issuer=ISSUER, oidc_client_id=CLIENT, oidc_scopes="profile email")
    with pytest.raises(ValidationError, match="http"):
        Settings(public_url="relay.example.test")
    assert build_sso(Settings(), None, Keys(), None) is None  # type: ignore[arg-type]


async def test_without_sso_its_pages_say_so_and_the_sign_in_page_is_told(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    oidc = {"oidc_issuer": ISSUER, "oidc_client_id": CLIENT}
    for auth, extra in ((True, {}), (False, oidc)):  # not configured; configured, auth off
        async with relay_client(relay_settings(redis_server.url, auth=auth, **extra),
                                fake) as api:
            assert (await api.get("/api/login")).json() == {"auth": auth, "sso": False}
            for path in ("/sso/login", "/sso/callback?code=c&state=s"):
                page = await api.get(path)
                assert page.status_code == 404, page.text
                assert page.headers["content-type"].startswith("text/html")
                assert 'data-code="sign_in_off"' in page.text and "RELAY_OIDC_ISSUER" in page.text


def test_the_redirect_uri_is_under_the_public_url_or_the_address_used() -> None:
    scope = {"type": "http", "scheme": "http", "server": ("10.0.0.5", 8000), "path": "/sso/login",
             "root_path": "", "query_string": b"",
             "headers": [(b"host", b"relay.internal:8000")]}
    request = Request(scope)
    relay = SimpleNamespace(settings=Settings(public_url="https://relay.example.test/"))
    assert redirect_uri(request, relay) == "https://relay.example.test/sso/callback"  # type: ignore[arg-type]
    relay = SimpleNamespace(settings=Settings())
    assert redirect_uri(request, relay) == "http://relay.internal:8000/sso/callback"  # type: ignore[arg-type]
