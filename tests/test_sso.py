"""Single sign-on against a real OpenID provider (panva's oidc-provider on loopback): the whole
authorization-code flow with PKCE through the provider's own forms, the login it makes, and each
refusal, as the browser would meet it (an HTML page with its status)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.errors import SignInRefused
from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.security.oidc import ClientConfig, OpenIdProvider
from opencode_relay.security.sso import principal_id
from opencode_relay.security.tokens import digest
from opencode_relay.store.keys import Keys
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPES,
    OidcProvider,
    callback_url,
    cancel_at_provider,
    query_of,
    relay_env,
    relay_with_provider,
    sign_in,
    tokens_for_another_client,
)
from tests.support.push_service import PushService
from tests.support.redis_under_test import redis_client
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import REFUSED_PORT, RelayProcess

pytestmark = pytest.mark.integration

COOKIE = "ocr_session"


@pytest.fixture(scope="module")
def idp_relay(stack_dir: Path, redis_server: EmbeddedRedis,
              opencode: EmbeddedOpencode) -> Iterator[tuple[OidcProvider, RelayProcess]]:
    """A relay with RELAY_AUTH on and single sign-on at a provider of its own."""
    with relay_with_provider(stack_dir, redis_server.url, opencode.url, "sso") as both:
        yield both


@pytest.fixture()
def relay(idp_relay: tuple[OidcProvider, RelayProcess]) -> RelayProcess:
    return idp_relay[1]


@pytest.fixture()
def browser() -> Iterator[httpx.Client]:
    """A cookie jar of its own, like one browser."""
    with httpx.Client(timeout=30) as client:
        yield client


def _refusal(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'data-code="{code}"' in response.text, response.text


def _audit(relay: RelayProcess, admin_cookie: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{relay.url}/api/audit", params={"action": "auth.", "limit": 200},
                       cookies={COOKIE: admin_cookie})
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, object]] = answer.json()["entries"]
    return entries


def test_the_login_page_is_told_sso_is_offered(relay: RelayProcess) -> None:
    answer = httpx.get(f"{relay.url}/api/login")
    assert answer.status_code == 200
    assert answer.json() == {"auth": True, "sso": True}


def test_a_sign_in_makes_the_relays_browser_login_for_issuer_and_sub(
        idp_relay: tuple[OidcProvider, RelayProcess], browser: httpx.Client) -> None:
    provider, relay = idp_relay
    url = callback_url(browser, relay.url, "alice")
    assert set(query_of(url)) >= {"code", "state"}
    done = browser.get(url)
    assert done.status_code == 303 and done.headers["location"] == "/"
    set_cookie = done.headers.get_list("set-cookie")
    login = next(c for c in set_cookie if c.startswith(f"{COOKIE}="))
    assert "HttpOnly" in login and "SameSite=strict" in login
    assert any(c.startswith("ocr_sso=") and "Max-Age=0" in c for c in set_cookie)

    me = browser.get(f"{relay.url}/api/me").json()["principal"]
    alice = principal_id(provider.issuer, "alice")
    assert me == {"id": alice, "name": "Alice Example", "admin": True, "terminal": True}
    assert alice.startswith("oidc_") and "{" not in alice and ":" not in alice

    # The login is the ordinary one: writes need our own origin, and they work.
    made = browser.post(f"{relay.url}/api/sessions", json={"title": "sso"},
                        headers={"Origin": relay.url})
    assert made.status_code == 200, made.text
    foreign = browser.post(f"{relay.url}/api/sessions", json={"title": "x"},
                           headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403

    # Bob is not in the admin group; signing in again is the same person.
    with httpx.Client(timeout=30) as other:
        assert sign_in(other, relay.url, "bob").status_code == 303
        bob = other.get(f"{relay.url}/api/me").json()["principal"]
        assert bob == {"id": principal_id(provider.issuer, "bob"), "name": "Bob Example",
                       "admin": False, "terminal": False}
        # Alice's session is not Bob's to see.
        sid = made.json()["id"]
        assert other.get(f"{relay.url}/api/sessions/{sid}").status_code == 404
        assert sign_in(other, relay.url, "bob").status_code == 303
        assert other.get(f"{relay.url}/api/me").json()["principal"]["id"] == bob["id"]

    cookie = browser.cookies[COOKIE]
    entries = _audit(relay, cookie)
    logins = [e for e in entries if e["action"] == "auth.login" and e["outcome"] == "ok"]
    assert {e["principal"] for e in logins} >= {alice, bob["id"]}
    assert all(e["detail"] == {"method": "sso"} for e in logins)
    text = json.dumps(entries)
    assert query_of(url)["code"] not in text and query_of(url)["state"] not in text
    assert CLIENT_SECRET not in text and cookie not in text

    # Logout ends the relay login (the existing route), and says whose it was.
    out = browser.post(f"{relay.url}/api/logout", headers={"Origin": relay.url})
    assert out.status_code == 200
    assert httpx.get(f"{relay.url}/api/me", cookies={COOKIE: cookie}).status_code == 401
    with httpx.Client(timeout=30) as admin:
        sign_in(admin, relay.url, "alice")
        logouts = [e for e in _audit(relay, admin.cookies[COOKIE])
                   if e["action"] == "auth.logout"]
    assert logouts[0]["principal"] == alice


def test_a_missing_unknown_or_reused_state_is_refused(relay: RelayProcess,
                                                      browser: httpx.Client) -> None:
    url = callback_url(browser, relay.url, "bob")
    code = query_of(url)["code"]
    _refusal(browser.get(f"{relay.url}/sso/callback", params={"code": code}), 400,
             "sign_in_state_invalid")
    _refusal(browser.get(f"{relay.url}/sso/callback", params={"code": code, "state": "forged"}),
             400, "sign_in_state_invalid")
    assert browser.get(url).status_code == 303  # the real one still works once...
    me = browser.get(f"{relay.url}/api/me")
    assert me.json()["principal"]["name"] == "Bob Example"
    replay = browser.get(url)  # ...and only once: the state was taken
    _refusal(replay, 400, "sign_in_state_invalid")
    assert "finished already" in replay.text


def test_a_replayed_code_is_refused_by_the_provider(relay: RelayProcess,
                                                    browser: httpx.Client) -> None:
    """The code of a finished sign-in, brought back under a fresh state of this browser."""
    first = callback_url(browser, relay.url, "bob")
    assert browser.get(first).status_code == 303
    fresh = query_of(callback_url(browser, relay.url, "bob"))
    replayed = browser.get(f"{relay.url}/sso/callback",
                           params={"code": query_of(first)["code"], "state": fresh["state"]})
    _refusal(replayed, 401, "sign_in_refused")
    assert "used already" in replayed.text


def test_a_sign_in_cannot_be_finished_in_another_browser(relay: RelayProcess,
                                                         browser: httpx.Client) -> None:
    url = callback_url(browser, relay.url, "bob")
    with httpx.Client(timeout=30) as elsewhere:  # no binding cookie: a login-CSRF attempt
        answer = elsewhere.get(url)
        _refusal(answer, 400, "sign_in_state_invalid")
        assert COOKIE not in elsewhere.cookies
    assert "another browser" in answer.text


def test_a_sign_in_declined_at_the_provider_is_refused(relay: RelayProcess,
                                                       browser: httpx.Client) -> None:
    url = cancel_at_provider(browser, relay.url)
    assert query_of(url)["error"] == "access_denied"
    answer = browser.get(url)
    _refusal(answer, 401, "sign_in_refused")
    assert "access_denied" in answer.text
    assert COOKIE not in browser.cookies
    # The refusal is audited, with why, and without whom (nobody signed in).
    with httpx.Client(timeout=30) as admin:
        sign_in(admin, relay.url, "alice")
        refused = [e for e in _audit(relay, admin.cookies[COOKIE])
                   if e["action"] == "auth.login" and e["outcome"] == "refused"]
    assert {"principal": None, "status": 401,
            "detail": {"method": "sso", "reason": "provider_refused"}}.items() <= refused[0].items()
    assert query_of(url)["state"] not in json.dumps(refused)


def test_an_expired_id_token_is_refused(stack_dir: Path, redis_server: EmbeddedRedis,
                                        opencode: EmbeddedOpencode, browser: httpx.Client,
                                        ) -> None:
    """A provider whose clock is ten minutes behind, with one-minute ID tokens: every token
    it issues has expired on arrival (past the relay's minute of leeway)."""
    with relay_with_provider(stack_dir, redis_server.url, opencode.url, "sso-expired",
                             id_token_seconds=60, clock_offset_seconds=-600) as (_, relay):
        answer = sign_in(browser, relay.url, "alice")
        _refusal(answer, 401, "sign_in_refused")
        assert "expired" in answer.text
        assert COOKIE not in browser.cookies


def test_an_issuer_that_is_not_the_configured_one_is_refused(
        idp_relay: tuple[OidcProvider, RelayProcess], stack_dir: Path,
        redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        browser: httpx.Client) -> None:
    """The provider answers at the configured address but names itself differently."""
    provider, _ = idp_relay
    port = provider.issuer.rsplit(":", 1)[1]
    relay = RelayProcess(redis_server.url, opencode.url, stack_dir / "sso-issuer.log")
    relay.env.update(relay_env(provider, RELAY_OIDC_ISSUER=f"http://localhost:{port}"))
    try:
        relay.start()
        answer = browser.get(f"{relay.url}/sso/login")
        _refusal(answer, 502, "identity_provider_error")
        assert "must be the same string" in answer.text
    finally:
        relay.stop()


def test_a_provider_that_cannot_be_reached_gets_a_page_not_a_500(
        stack_dir: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        browser: httpx.Client) -> None:
    relay = RelayProcess(redis_server.url, opencode.url, stack_dir / "sso-down.log",
                         extra_env={"RELAY_AUTH": "true", "RELAY_COOKIE_SECURE": "false",
                                    "RELAY_OIDC_ISSUER": f"http://127.0.0.1:{REFUSED_PORT}",
                                    "RELAY_OIDC_CLIENT_ID": "relay"})
    try:
        relay.start()
        answer = browser.get(f"{relay.url}/sso/login")
        _refusal(answer, 503, "identity_provider_unavailable")
        assert "ocr_sso" not in browser.cookies  # nothing was started
        # The API and token logins are untouched.
        assert httpx.get(f"{relay.url}/api/login").json() == {"auth": True, "sso": True}
    finally:
        relay.stop()


async def test_states_expire_and_are_kept_by_digest_only(
        relay: RelayProcess, redis_server: EmbeddedRedis) -> None:
    async with httpx.AsyncClient() as browser:
        start = await browser.get(f"{relay.url}/sso/login")
    state = query_of(start.headers["location"])["state"]
    client = redis_client(redis_server.url)  # the cluster client on the cluster pass
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{relay.prefix}auth:sso-state:*")]
        assert keys and all(state not in k for k in keys)
        for key in keys:
            assert 0 < await client.pttl(key) <= 600_000
        record = json.loads(await client.get(Keys(relay.prefix).sso_state(digest(state))))
        assert set(record) == {"nonce", "verifier", "redirect_uri", "binding"}
        assert record["redirect_uri"] == f"{relay.url}/sso/callback"
    finally:
        await client.aclose()


async def test_a_genuine_id_token_for_another_client_is_refused(stack_dir: Path) -> None:
    """The real provider's ID token, issued to another of its clients, checked by the relay's
    OpenID side (real discovery, real keys): not for this relay. The same token passes for the
    client it was issued to, so nothing else is wrong with it."""
    other = {"client_id": "another-app", "client_secret": "another-secret-0123456789",
             "redirect_uris": [f"http://127.0.0.1:{REFUSED_PORT}/callback"]}
    provider = OidcProvider([f"http://127.0.0.1:{REFUSED_PORT}/sso/callback"],
                            stack_dir / "sso-audience-idp.log", extra_clients=[other]).start()
    try:
        tokens = tokens_for_another_client(provider, other, "alice", "nonce-1")
        relays = OpenIdProvider(ClientConfig(provider.issuer, CLIENT_ID, CLIENT_SECRET, SCOPES))
        with pytest.raises(SignInRefused) as refused:
            await relays.id_token_claims(tokens["id_token"], "nonce-1", tokens["access_token"])
        assert refused.value.reason == "wrong_audience"
        assert "'another-app'" in refused.value.message
        theirs = OpenIdProvider(ClientConfig(provider.issuer, "another-app", None, "openid"))
        claims = await theirs.id_token_claims(tokens["id_token"], "nonce-1",
                                              tokens["access_token"])
        assert claims["sub"] == "alice" and claims["aud"] == "another-app"
        await relays.aclose()
        await theirs.aclose()
    finally:
        provider.stop()


def test_a_group_claim_makes_the_person_a_member_of_the_team_bound_to_that_group(
        idp_relay: tuple[OidcProvider, RelayProcess], browser: httpx.Client) -> None:
    """Teams made with `--group`: Bob's provider says he is in `engineering`, so he holds the
    group's role on the team's sessions without being added by hand (and nothing more)."""
    _provider, relay = idp_relay
    team = f"eng-{uuid.uuid4().hex[:6]}"
    made = relay_cli(relay, "team", "create", team, "--group", "engineering",
                     "--group-role", "viewer")
    assert made.returncode == 0, made.stderr
    owner = make_token(relay, f"{team}-owner")
    added = relay_cli(relay, "team", "add", team, token_id(relay, f"{team}-owner"), "member")
    assert added.returncode == 0, added.stderr
    session = httpx.post(f"{relay.url}/api/sessions", json={"title": "team", "team": team},
                         headers=bearer(owner))
    assert session.status_code == 200, session.text
    sid = session.json()["id"]

    assert sign_in(browser, relay.url, "bob").status_code == 303
    teams = browser.get(f"{relay.url}/api/teams").json()["teams"]
    assert [(t["name"], t["role"]) for t in teams if t["name"] == team] == [(team, "viewer")]
    read = browser.get(f"{relay.url}/api/sessions/{sid}")
    assert read.status_code == 200, read.text
    assert read.json()["access"]["role"] == "viewer"
    prompt = browser.post(f"{relay.url}/api/sessions/{sid}/prompt",
                          json={"parts": [{"type": "text", "text": "hi"}]},
                          headers={"Origin": relay.url})
    assert prompt.status_code == 403, prompt.text
    assert prompt.json()["error"]["code"] == "role_refused"


def test_a_team_request_reaches_the_holders_of_its_admin_group_as_their_last_sign_in_says(
        stack_dir: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str, tmp_path: Path) -> None:
    """A team whose `squad` group holders are its admins: a permission asked in its session is
    pushed (through the real protocol, to a push service on loopback) to each person whose
    provider named the group at their sign-in, once, a named admin who holds it too included;
    not to a holder of another group. Once the provider drops the group, the next sign-in
    says so, and the next request does not reach that person; nor one who signed out."""
    squad = f"squad-{uuid.uuid4().hex[:6]}"
    people = ("gwen", "dora", "lou", "vic")
    users = {login: {"name": f"{login.title()} Example", "email": f"{login}@example.test",
                     "groups": [squad]} for login in people}
    users["vic"]["groups"] = [f"{squad}-viewers"]
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    push = PushService().start()
    clients = {who: httpx.Client(timeout=60) for who in people}
    try:
        with relay_with_provider(stack_dir, redis_server.url, opencode.url, "sso-push",
                                 {"RELAY_PUSH_ALLOW_LOOPBACK_HTTP": "true"},
                                 users_file=users_file) as (provider, relay):
            team = f"team-{squad}"
            owner_token = make_token(relay, f"{team}-owner")
            for args in (("create", team, "--group", squad, "--group-role", "admin"),
                         ("add", team, token_id(relay, f"{team}-owner"), "member"),
                         ("add", team, principal_id(provider.issuer, "dora"), "admin")):
                done = relay_cli(relay, "team", *args)
                assert done.returncode == 0, (args, done.stderr)
            owner = httpx.Client(base_url=relay.url, headers=bearer(owner_token), timeout=60)
            clients["owner"] = owner
            push.vapid_key = owner.get("/api/push/key").json()["publicKey"]
            browsers = {who: push.browser(f"{who}-{squad}") for who in clients}
            for who, client in clients.items():
                if who != "owner":
                    assert sign_in(client, relay.url, who).status_code == 303
                subscribed = client.post(f"{relay.url}/api/push/subscriptions",
                                         json=browsers[who].to_json(),
                                         headers={"Origin": relay.url})
                assert subscribed.status_code == 200, subscribed.text

            def ask(title: str, command: str) -> str:
                marker = scripted.script(script_key + command, [
                    [{"tool": "bash", "args": {"command": f"echo {command}",
                                               "description": "echo"}}],
                    [{"text": "Ran it."}]])
                made = owner.post("/api/sessions", json={"title": title, "team": team})
                assert made.status_code == 200, made.text
                sid: str = made.json()["id"]
                assert owner.post(f"/api/sessions/{sid}/prompt",
                                  json={"text": marker}).status_code == 202
                return sid

            def answer(who: str, sid: str) -> None:
                pending = clients[who].get(f"{relay.url}/api/sessions/{sid}/requests")
                assert pending.status_code == 200, pending.text
                request_id = pending.json()["permissions"][0]["id"]
                replied = clients[who].post(
                    f"{relay.url}/api/sessions/{sid}/permissions/{request_id}",
                    json={"reply": "once"}, headers={"Origin": relay.url})
                assert replied.status_code == 200, replied.text

            def holders() -> tuple[list[dict[str, str]], str]:
                """The group's holders, as the team route and the admin CLI list them."""
                detail = owner.get(f"/api/teams/{team}")
                assert detail.status_code == 200, detail.text
                listed = relay_cli(relay, "team", "list", team)
                assert listed.returncode == 0, listed.stderr
                return detail.json()["groupHolders"], listed.stdout

            def holder(who: str) -> dict[str, str]:
                return {"principal": principal_id(provider.issuer, who), "role": "admin"}

            found, listed = holders()
            assert sorted(found, key=lambda h: h["principal"]) == sorted(
                [holder(who) for who in ("gwen", "dora", "lou")], key=lambda h: h["principal"])
            assert f"{principal_id(provider.issuer, 'lou')}\tadmin\tholds group '{squad}'" \
                in listed
            first = ask("squad first", "squad-first")
            (asked,) = push.wait_messages(browsers["gwen"], 1)
            assert asked["kind"] == "permission" and asked["sessionID"] == first
            told = {who: push.messages(browser) for who, browser in browsers.items()}
            assert told == {"gwen": [asked], "dora": [asked], "lou": [asked], "vic": [],
                            "owner": [asked]}
            answer("gwen", first)  # a holder of the group may answer it

            # The provider drops Gwen from the group; her next sign-in says so. Lou signs out.
            users["gwen"]["groups"] = []
            users_file.write_text(json.dumps(users))
            assert sign_in(clients["gwen"], relay.url, "gwen").status_code == 303
            out = clients["lou"].post(f"{relay.url}/api/logout", headers={"Origin": relay.url})
            assert out.status_code == 200

            found, listed = holders()
            assert found == [holder("dora")]
            assert principal_id(provider.issuer, "lou") not in listed
            second = ask("squad second", "squad-second")
            messages = push.wait_messages(browsers["dora"], 2)
            assert [m["sessionID"] for m in messages] == [first, second]
            assert [m["sessionID"] for m in push.messages(browsers["owner"])] == [first, second]
            for who in ("gwen", "lou"):
                assert push.messages(browsers[who]) == [asked], who
            assert push.messages(browsers["vic"]) == []
            gone = clients["gwen"].get(f"{relay.url}/api/sessions/{second}")
            assert gone.status_code == 404, gone.text  # nor may she see it any more
            answer("dora", second)
            assert push.problems() == []
    finally:
        for client in clients.values():
            client.close()
        push.stop()
