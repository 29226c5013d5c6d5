"""Authentication and ownership against the real stack: every route, every kind of caller."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis, free_port
from opencode_relay.store.keys import Keys
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.redis_under_test import sync_redis_client
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration

OPENCODE_PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secured(stack_dir: Path, redis_server: EmbeddedRedis,
            opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    # The password is given although this opencode needs none: it must never show up anywhere.
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / "secured.log",
                           extra_env={"RELAY_AUTH": "true",
                                      "OPENCODE_SERVER_PASSWORD": OPENCODE_PASSWORD}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tokens(secured: RelayProcess) -> dict[str, str]:
    made = {name: make_token(secured, name, admin=name == "root")
            for name in ("alice", "bob", "root", "mallory")}
    done = relay_cli(secured, "token", "revoke", token_id(secured, "mallory"))
    assert done.returncode == 0, done.stderr
    return made


@pytest.fixture(scope="module")
def alice_session(secured: RelayProcess, tokens: dict[str, str],
                  scripted: ScriptedProvider) -> dict[str, str]:
    """A session of alice's with one exchange in it."""
    with httpx.Client(base_url=secured.url, headers=bearer(tokens["alice"]), timeout=60) as api:
        created = api.post("/api/sessions", json={"title": "alice-private-title"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        marker = scripted.script(f"sec{uuid.uuid4().hex[:8]}",
                                 [[{"text": "alice-secret-answer"}]])
        answer = api.post(f"/api/sessions/{sid}/messages", json={"text": marker})
        assert answer.status_code == 200, answer.text
        return {"sid": sid, "mid": answer.json()["info"]["id"]}


def _routes(secured: RelayProcess, root_token: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{secured.url}/api/openapi.json", headers=bearer(root_token)).json()
    found = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    assert len(found) > 20, found  # the whole API, not a stub
    return found + [("GET", "/metrics"), ("GET", "/api/docs"), ("GET", "/api/openapi.json")]


def _fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "request_id":
            return "que_notreal" if "/questions/" in path else "per_notreal"
        if name == "share_id":
            return "shr_0123456789abcdef"
        return ids["mid"] if name == "mid" else ids["sid"]
    return re.sub(r"\{(\w+)\}", value, path)


_BODIES = {"/messages": {"text": "hi"}, "/prompt": {"text": "hi"},
           "/command": {"command": "relay-greet", "arguments": "hi"},
           "/revert": {"messageID": "msg_notreal"},
           "/permissions/": {"reply": "once"}, "/questions/": {"answers": [["a"]]}}


def _body(method: str, path: str) -> dict | None:
    if method not in ("POST", "PATCH"):
        return None
    if method == "PATCH":
        return {"title": "taken over"}
    if path.endswith("/reject"):
        return None
    return next((b for k, b in _BODIES.items() if k in path), {})


# Routes with a required query parameter get one, so the answer is about the session, not a 422.
_QUERIES = {"/changes/diff": {"path": "a.txt"}, "/file": {"path": "a.txt"}}


def _call(base: str, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = _body(method, path)
    query = next((q for k, q in _QUERIES.items() if path.endswith(k)), None)
    if path.endswith("/events"):  # an SSE stream: only the status and headers matter here
        with httpx.stream(method, base + path, headers=headers, timeout=10) as response:
            response.close()
            return response
    return httpx.request(method, base + path, headers=headers, timeout=60, params=query,
                         **({"json": body} if body is not None else {}))


@pytest.mark.parametrize("credential", ["none", "wrong", "malformed", "revoked"])
def test_every_route_refuses_a_missing_or_bad_credential(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str],
        credential: str) -> None:
    headers = {"none": {}, "wrong": bearer("ocr_" + "x" * 43),
               "malformed": {"Authorization": f"Basic {tokens['alice']}"},
               "revoked": bearer(tokens["mallory"])}[credential]
    for method, template in _routes(secured, tokens["root"]):
        if template in ("/api/login", "/api/logout"):
            continue
        path = _fill(template, alice_session)
        response = _call(secured.url, method, path, headers)
        assert response.status_code == 401, (method, path, response.status_code)
        if not path.endswith("/events"):
            error = response.json()["error"]
            assert error["code"] == "unauthorized"
            assert alice_session["sid"] not in response.text
        assert response.headers.get("www-authenticate") == "Bearer"
    # The session was not touched by any of it.
    owner = httpx.get(f"{secured.url}/api/sessions/{alice_session['sid']}",
                      headers=bearer(tokens["alice"]))
    assert owner.json()["session"]["title"] == "alice-private-title"


def test_another_principal_gets_no_commands_or_files_of_a_session(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    """The session named in a query (GET /api/commands?session=) is checked like one in a path."""
    sid = alice_session["sid"]
    bob = bearer(tokens["bob"])
    refused = httpx.get(f"{secured.url}/api/commands", params={"session": sid}, headers=bob)
    assert refused.status_code == 404 and "alice" not in refused.text
    assert httpx.get(f"{secured.url}/api/sessions/{sid}/files", headers=bob).status_code == 404
    alice = bearer(tokens["alice"])
    assert httpx.get(f"{secured.url}/api/commands", params={"session": sid},
                     headers=alice).status_code == 200
    assert httpx.get(f"{secured.url}/api/sessions/{sid}/files",
                     headers=alice).status_code == 200


def _sweep_unknown(secured: RelayProcess, root_token: str, headers: dict[str, str],
                   ids: dict[str, str], private: str) -> None:
    """Every route naming a session answers `headers`' caller for the real `ids` just as for
    ids that never existed: 404, the same body but for the ids, nothing of `private`."""
    ghost = {"sid": "ses_" + uuid.uuid4().hex[:24], "mid": "msg_" + uuid.uuid4().hex[:24]}
    checked = 0
    for method, template in _routes(secured, root_token):
        if "{" not in template or template.startswith(("/api/providers/", "/api/terminals/",
                                                       "/api/teams/")):
            continue  # not a session's (terminals: tests/test_terminal.py; teams: test_teams)
        real = _call(secured.url, method, _fill(template, ids), headers)
        fake = _call(secured.url, method, _fill(template, ghost), headers)
        assert real.status_code == 404, (method, template, real.status_code, real.text[:200])
        assert fake.status_code == 404, (method, template, fake.status_code)
        if not template.endswith("/events"):
            # Same answer as for an id that never existed, but for the id itself.
            def masked(text: str, ids: dict[str, str]) -> str:
                return text.replace(ids["sid"], "ID").replace(ids["mid"], "ID")
            assert masked(real.text, ids) == masked(fake.text, ghost), (method, template)
            assert private not in real.text
        checked += 1
    assert checked >= 15


def test_another_principal_cannot_tell_a_session_exists(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    bob = bearer(tokens["bob"])
    _sweep_unknown(secured, tokens["root"], bob, alice_session, "alice-private-title")
    # Bob's rename, delete and prompt went nowhere.
    alice = httpx.Client(base_url=secured.url, headers=bearer(tokens["alice"]), timeout=30)
    session = alice.get(f"/api/sessions/{alice_session['sid']}")
    assert session.status_code == 200 and session.json()["session"]["title"] == \
        "alice-private-title"
    messages = alice.get(f"/api/sessions/{alice_session['sid']}/messages").json()["messages"]
    assert len(messages) == 2
    # Listing and searching show bob nothing of alice's; root (admin) sees it.
    listed = httpx.get(f"{secured.url}/api/sessions?limit=1000", headers=bob).json()["sessions"]
    assert alice_session["sid"] not in {s["id"] for s in listed}
    search = httpx.get(f"{secured.url}/api/sessions?search=alice-private", headers=bob)
    assert search.json()["sessions"] == []
    root = httpx.get(f"{secured.url}/api/sessions?search=alice-private",
                     headers=bearer(tokens["root"])).json()["sessions"]
    assert [s["id"] for s in root] == [alice_session["sid"]]
    mine = alice.get("/api/sessions?limit=1000").json()["sessions"]
    assert alice_session["sid"] in {s["id"] for s in mine}


def test_a_member_of_another_team_cannot_tell_a_team_session_exists(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    """Alice administers team red, bob team blue: blue's session is unknown to alice on every
    route, as if it never existed; her team role counts for red's sessions only."""
    for team, who in (("red", "alice"), ("blue", "bob")):
        for args in (("create", team), ("add", team, token_id(secured, who), "admin")):
            done = relay_cli(secured, "team", *args)
            assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=secured.url, headers=bearer(tokens["bob"]), timeout=60) as api:
        created = api.post("/api/sessions", json={"title": "blue-team-title", "team": "blue"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        marker = scripted.script(f"sec{uuid.uuid4().hex[:8]}", [[{"text": "blue-team-answer"}]])
        answer = api.post(f"/api/sessions/{sid}/messages", json={"text": marker})
        assert answer.status_code == 200, answer.text
        blue = {"sid": sid, "mid": answer.json()["info"]["id"]}
        assert api.get(f"/api/sessions/{sid}").json()["access"]["team"] == "blue"
    alice = bearer(tokens["alice"])
    _sweep_unknown(secured, tokens["root"], alice, blue, "blue-team-title")
    commands = httpx.get(f"{secured.url}/api/commands", params={"session": sid}, headers=alice)
    assert commands.status_code == 404 and "blue" not in commands.text
    listed = httpx.get(f"{secured.url}/api/sessions?limit=1000", headers=alice).json()
    assert sid not in {s["id"] for s in listed["sessions"]}
    wait_for(lambda: httpx.get(f"{secured.url}/api/search", params={"q": "blue-team-answer"},
                               headers=bearer(tokens["root"])).json()["results"],
             what="blue's answer in the index")
    found = httpx.get(f"{secured.url}/api/search", params={"q": "blue-team-answer"},
                      headers=alice).json()
    assert found["results"] == []
    assert httpx.post(f"{secured.url}/api/sessions", headers=alice,
                      json={"team": "blue"}).status_code == 404
    # Bob's session is untouched by all of it.
    owner = httpx.get(f"{secured.url}/api/sessions/{sid}", headers=bearer(tokens["bob"]))
    assert owner.json()["session"]["title"] == "blue-team-title"


def test_bob_cannot_hang_a_session_under_alices(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    made = httpx.post(f"{secured.url}/api/sessions", headers=bearer(tokens["bob"]),
                      json={"title": "child", "parentID": alice_session["sid"]})
    assert made.status_code == 404


def test_a_fork_belongs_to_whoever_forked(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
    forked = httpx.post(f"{secured.url}/api/sessions/{alice_session['sid']}/fork",
                        headers=alice, json={}, timeout=30)
    assert forked.status_code == 200, forked.text
    fid = forked.json()["id"]
    assert httpx.get(f"{secured.url}/api/sessions/{fid}", headers=alice).status_code == 200
    assert httpx.get(f"{secured.url}/api/sessions/{fid}/messages",
                     headers=bob).status_code == 404
    mine = httpx.get(f"{secured.url}/api/sessions?limit=1000", headers=alice).json()
    assert fid in {s["id"] for s in mine["sessions"]}
    theirs = httpx.get(f"{secured.url}/api/sessions?limit=1000", headers=bob).json()
    assert fid not in {s["id"] for s in theirs["sessions"]}
    # Gone again, so searches for alice's title elsewhere find only her original.
    assert httpx.delete(f"{secured.url}/api/sessions/{fid}", headers=alice).status_code == 200


def test_global_stream_shows_each_principal_only_its_own_sessions(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    url = f"{secured.url}/api/events"
    streams = {name: EventCollector(url, headers=bearer(tokens[name])).start()
               for name in ("alice", "bob", "root")}
    try:
        sids = {}
        for name in ("alice", "bob"):
            api = httpx.Client(base_url=secured.url, headers=bearer(tokens[name]), timeout=60)
            sids[name] = api.post("/api/sessions", json={"title": f"{name}-live"}).json()["id"]
            marker = scripted.script(f"g{uuid.uuid4().hex[:8]}",
                                     [[{"text": f"{name}-only-words"}]])
            assert api.post(f"/api/sessions/{sids[name]}/messages",
                            json={"text": marker}).status_code == 200
        for name in ("alice", "bob"):
            streams[name].wait_for_type(
                "session.idle", where=lambda p, n=name: p["properties"]["sessionID"] == sids[n])
            streams["root"].wait_for_type(
                "session.idle", where=lambda p, n=name: p["properties"]["sessionID"] == sids[n])
        for name, other in (("alice", "bob"), ("bob", "alice")):
            text = json.dumps(streams[name].payloads())
            assert sids[other] not in text and f"{other}-only-words" not in text
            assert sids[name] in text and f"{name}-only-words" in text
        root_text = json.dumps(streams["root"].payloads())
        assert sids["alice"] in root_text and sids["bob"] in root_text
        # Each creator hears of its new session live, whatever opencode's event raced with.
        for name in ("alice", "bob"):
            created = [p for p in streams[name].payloads() if p["type"] == "relay.session.created"]
            assert [p["properties"]["sessionID"] for p in created] == [sids[name]]
        # Replay from the start of the log is filtered the same way.
        replay = EventCollector(f"{url}?after=0-0", headers=bearer(tokens["bob"])).start()
        try:
            replay.wait_for_type("session.idle",
                                 where=lambda p: p["properties"]["sessionID"] == sids["bob"])
            text = json.dumps(replay.payloads())
            assert sids["alice"] not in text and "alice-only-words" not in text
            assert "alice-private-title" not in text
        finally:
            replay.close()
    finally:
        for stream in streams.values():
            stream.close()


def test_browser_login_sets_a_safe_cookie_that_dies_with_logout_and_revocation(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    bad = httpx.post(f"{secured.url}/api/login", json={"token": "ocr_nope"})
    assert bad.status_code == 401 and "Set-Cookie" not in bad.headers
    carol = make_token(secured, "carol")
    login = httpx.post(f"{secured.url}/api/login", json={"token": carol})
    assert login.status_code == 200 and login.json()["principal"]["name"] == "carol"
    cookie_header = login.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie_header.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    cookie = cookie_header.split(";")[0]
    assert carol not in cookie_header
    as_carol = {"Cookie": cookie}
    made = httpx.post(f"{secured.url}/api/sessions", headers=as_carol, json={"title": "carol's"})
    assert made.status_code == 200
    sid = made.json()["id"]
    assert httpx.get(f"{secured.url}/api/sessions/{sid}", headers=as_carol).status_code == 200
    assert httpx.get(f"{secured.url}/api/sessions/{alice_session['sid']}",
                     headers=as_carol).status_code == 404
    # A write carried by the cookie from another origin is refused (CSRF).
    csrf = httpx.patch(f"{secured.url}/api/sessions/{sid}", json={"title": "x"},
                       headers={**as_carol, "Origin": "https://evil.example"})
    assert csrf.status_code == 403
    same = httpx.patch(f"{secured.url}/api/sessions/{sid}", json={"title": "renamed"},
                       headers={**as_carol, "Origin": secured.url})
    assert same.status_code == 200, same.text
    # Logout ends this login; another login ends with the token's revocation.
    assert httpx.post(f"{secured.url}/api/logout", headers=as_carol).status_code == 200
    assert httpx.get(f"{secured.url}/api/sessions", headers=as_carol).status_code == 401
    again = httpx.post(f"{secured.url}/api/login", json={"token": carol})
    as_carol = {"Cookie": again.headers["set-cookie"].split(";")[0]}
    assert httpx.get(f"{secured.url}/api/me", headers=as_carol).status_code == 200
    assert relay_cli(secured, "token", "revoke", token_id(secured, "carol")).returncode == 0
    assert httpx.get(f"{secured.url}/api/me", headers=as_carol).status_code == 401
    assert httpx.get(f"{secured.url}/api/me", headers=bearer(carol)).status_code == 401


def test_admin_sees_sessions_of_unknown_owner_others_do_not(
        secured: RelayProcess, tokens: dict[str, str], oc: httpx.Client) -> None:
    # Made straight at opencode: nobody's session as far as the relay knows.
    sid = oc.post("/session", json={"title": "made-behind-the-relay"}).json()["id"]
    root = httpx.get(f"{secured.url}/api/sessions/{sid}", headers=bearer(tokens["root"]))
    assert root.status_code == 200
    for name in ("alice", "bob"):
        assert httpx.get(f"{secured.url}/api/sessions/{sid}",
                         headers=bearer(tokens[name])).status_code == 404


def test_tokens_are_stored_as_hashes_and_listed_without_secrets(
        secured: RelayProcess, tokens: dict[str, str], redis_server: EmbeddedRedis) -> None:
    listed = relay_cli(secured, "token", "list").stdout
    assert "alice" in listed and "revoked" in listed
    client = sync_redis_client(redis_server.url)
    stored = b"".join(
        b"".join([key, *((client.hgetall(key) or {}).values() if client.type(key) == b"hash"
                         else [client.dump(key) or b""])])
        for key in client.scan_iter(f"{secured.prefix}*"))
    for secret in tokens.values():
        assert secret.encode() not in stored
        assert secret not in listed


def test_no_secret_in_logs_answers_or_metrics(
        secured: RelayProcess, tokens: dict[str, str], alice_session: dict[str, str]) -> None:
    root = bearer(tokens["root"])
    answers = [httpx.get(f"{secured.url}{path}", headers=root).text
               for path in ("/api/health", "/metrics", "/readyz", "/api/me",
                            "/api/sessions/ses_nope/messages", "/api/providers")]
    answers.append(httpx.get(f"{secured.url}/api/me", headers=bearer("ocr_" + "y" * 43)).text)
    log = Path(secured.log_path).read_text()
    for text in [*answers, log]:
        assert OPENCODE_PASSWORD not in text
        for secret in tokens.values():
            assert secret not in text


def test_request_ids_go_in_and_out_and_into_json_logs(secured: RelayProcess,
                                                      tokens: dict[str, str]) -> None:
    rid = f"req-{uuid.uuid4().hex[:12]}"
    response = httpx.get(f"{secured.url}/api/me", headers={**bearer(tokens["bob"]),
                                                          "X-Request-ID": rid})
    assert response.headers["x-request-id"] == rid
    made = httpx.get(f"{secured.url}/api/me", headers=bearer(tokens["bob"]))
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])

    def logged() -> dict | None:
        for line in Path(secured.log_path).read_text().splitlines():
            if rid in line and line.startswith("{"):
                return json.loads(line)
        return None

    entry = wait_for(logged, 10, "the request's log line")
    assert entry["request_id"] == rid and entry["route"] == "/api/me"
    assert entry["status"] == 200 and entry["principal"] == token_id(secured, "bob")


def test_metrics_need_an_admin(secured: RelayProcess, tokens: dict[str, str]) -> None:
    assert httpx.get(f"{secured.url}/metrics").status_code == 401
    assert httpx.get(f"{secured.url}/metrics", headers=bearer(tokens["bob"])).status_code == 403
    assert httpx.get(f"{secured.url}/metrics", headers=bearer(tokens["root"])).status_code == 200


def test_public_probes_reveal_nothing(secured: RelayProcess) -> None:
    ready = httpx.get(f"{secured.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "opencode": {"ok": True, "events": "connected"},
                            "redis": {"ok": True}}
    assert httpx.get(f"{secured.url}/healthz").status_code == 200
    assert httpx.get(f"{secured.url}/api/health").status_code == 401


def test_cors_is_closed_unless_configured(secured: RelayProcess) -> None:
    preflight = httpx.options(f"{secured.url}/api/sessions",
                              headers={"Origin": "https://elsewhere.example",
                                       "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


def test_refuses_to_listen_beyond_loopback_without_auth(redis_server: EmbeddedRedis,
                                                        opencode: EmbeddedOpencode,
                                                        tmp_path: Path) -> None:
    relay = RelayProcess(redis_server.url, opencode.url, tmp_path / "open.log",
                         extra_env={"RELAY_AUTH": "false"})
    done = subprocess.run([sys.executable, "-m", "opencode_relay.cli", "serve", "--host",
                           "0.0.0.0", "--port", str(free_port())], env=relay.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "RELAY_AUTH" in done.stderr


def test_log_lines_are_scrubbed_of_secrets() -> None:
    import logging

    from opencode_relay.logs import Redactor
    redactor = Redactor(["s3cret-password"])
    record = logging.makeLogRecord({
        "msg": "pw=%s token=%s auth=%s url=%s",
        "args": ("s3cret-password", "ocr_" + "a" * 43, "Bearer abc.def",
                 "http://opencode:s3cret-password@host/")})
    assert redactor.filter(record)
    assert "s3cret" not in record.msg and "ocr_aaaa" not in record.msg
    assert "abc.def" not in record.msg
    broken = logging.makeLogRecord({"msg": "%d apples", "args": ("many",)})
    assert redactor.filter(broken)  # a malformed call is logged, not raised


def test_a_pruned_session_reopens_for_its_owner_only(
        secured: RelayProcess, tokens: dict[str, str], redis_server: EmbeddedRedis,
        scripted: ScriptedProvider) -> None:
    alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
    sid = httpx.post(f"{secured.url}/api/sessions", json={"title": "soon pruned"},
                     headers=alice, timeout=60).json()["id"]
    time.sleep(2.5)  # idle for longer than the second below, events included
    pruned = relay_cli(secured, "prune", "--idle-seconds", "1")
    assert pruned.returncode == 0, pruned.stderr
    client = sync_redis_client(redis_server.url)
    assert client.get(Keys(secured.prefix).session(sid)) is None  # gone from Redis
    assert httpx.get(f"{secured.url}/api/sessions/{sid}", headers=bob).status_code == 404
    back = httpx.get(f"{secured.url}/api/sessions/{sid}", headers=alice)
    assert back.status_code == 200 and back.json()["session"]["title"] == "soon pruned"


def test_redis_down_with_auth_on_is_a_503_not_a_500(tmp_path: Path,
                                                    opencode: EmbeddedOpencode) -> None:
    own = EmbeddedRedis(tmp_path / "redis").start()
    relay = RelayProcess(own.url, opencode.url, tmp_path / "relay.log",
                         extra_env={"RELAY_AUTH": "true"})
    relay.start()
    own.stop()  # after start: down at start, `serve` would not start at all
    try:
        for headers in (bearer("ocr_" + "x" * 43), {"cookie": "ocr_session=abc"}):
            answer = httpx.get(f"{relay.url}/api/sessions", headers=headers)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "redis_unavailable"
    finally:
        relay.stop()
        own.stop()


def test_errors_name_an_unreachable_server_never_its_url(tmp_path: Path,
                                                         redis_server: EmbeddedRedis) -> None:
    secret = f"s3cret-{uuid.uuid4().hex[:6]}"
    url = f"http://opencode:{secret}@127.0.0.1:{free_port()}"
    relay = RelayProcess(redis_server.url, f"gpu={url}", tmp_path / "relay.log")
    relay.start(wait_synced=False, ready=False)
    try:
        for answer in (httpx.get(f"{relay.url}/api/upstreams"),
                       httpx.post(f"{relay.url}/api/sessions", json={"title": "x"})):
            assert secret not in answer.text and "127.0.0.1" not in answer.text
            assert "gpu" in answer.text
    finally:
        relay.stop()
