"""Web Push end to end: the real protocol against a push service on loopback.

Two relay replicas (auth on) share one Redis; browsers made by the test subscribe through the
API; the scripted model asks for a permission (from a sub-agent), a question, finishes turns,
a prompt fails on an unreachable provider; the push service checks each VAPID token and
decrypts each message, and the test asserts exactly one notification per event, for the owner
only; a team session's requests also reach the team's admins, and only them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.push_service import Browser, PushService, unb64url
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import RelayProcess, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    first: RelayProcess   # ingests
    second: RelayProcess  # standby, same Redis and prefix
    push: PushService
    alice: httpx.Client   # on the first replica
    alice_b: httpx.Client  # alice on the second replica
    bob: httpx.Client
    root: dict[str, str]  # an admin's headers (for /metrics)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
          opencode: EmbeddedOpencode) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("push")
    env = {"RELAY_AUTH": "true", "RELAY_PUSH_ALLOW_LOOPBACK_HTTP": "true",
           "RELAY_PUSH_IDLE_SECONDS": "0"}
    first = RelayProcess(redis_server.url, opencode.url, logs / "a.log", extra_env=env).start()
    second = RelayProcess(redis_server.url, opencode.url, logs / "b.log", prefix=first.prefix,
                          extra_env=env).start(wait_synced=False)
    push = PushService().start()
    clients = []
    try:
        alice, bob = make_token(first, "alice"), make_token(first, "bob")
        clients = [httpx.Client(base_url=first.url, headers=bearer(alice), timeout=60),
                   httpx.Client(base_url=second.url, headers=bearer(alice), timeout=60),
                   httpx.Client(base_url=second.url, headers=bearer(bob), timeout=60)]
        key = clients[0].get("/api/push/key")
        assert key.status_code == 200, key.text
        push.vapid_key = key.json()["publicKey"]
        yield Stack(first, second, push, *clients, bearer(make_token(first, "root", admin=True)))
    finally:
        for client in clients:
            client.close()
        push.stop()
        second.stop()
        first.stop()


def _subscribe(api: httpx.Client, browser: Browser) -> str:
    response = api.post("/api/push/subscriptions", json=browser.to_json())
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_key_and_subscription_checks(stack: Stack, tmp_path: Path) -> None:
    key = stack.alice_b.get("/api/push/key").json()["publicKey"]
    assert key == stack.push.vapid_key  # one key pair for every replica
    assert len(unb64url(key)) == 65 and unb64url(key)[0] == 4
    browser = stack.push.browser("checks")
    good = browser.to_json()

    def post(body: dict[str, Any]) -> httpx.Response:
        return stack.alice.post("/api/push/subscriptions", json=body)

    for endpoint in ("http://push.example.com/x", "https://push.example.com/x",
                     "https://169.254.169.254/latest", "ftp://127.0.0.1/x", "https:///nohost",
                     "not a url at all"):
        refused = post({**good, "endpoint": endpoint})
        assert refused.status_code in (400, 422), (endpoint, refused.text)
        assert refused.json()["error"]["message"]
    short = post({**good, "keys": {**good["keys"], "auth": "AAAA"}})
    assert short.status_code == 422, short.text
    off_curve = post({**good, "keys": {**good["keys"], "p256dh": "BA" + "A" * 85}})
    assert off_curve.status_code == 400, off_curve.text
    assert "P-256" in off_curve.json()["error"]["message"]
    assert post({"endpoint": good["endpoint"]}).status_code == 422
    first = post(good)
    assert first.status_code == 200 and first.json()["id"].startswith("psub_")
    assert post(good).json()["id"] == first.json()["id"]  # the same browser again: replaced
    # Another principal cannot remove it; its owner can, once.
    gone = {"endpoint": good["endpoint"]}
    assert stack.bob.request("DELETE", "/api/push/subscriptions", json=gone).json() == {
        "removed": False}
    assert stack.alice_b.request("DELETE", "/api/push/subscriptions", json=gone).json() == {
        "removed": True}
    assert stack.alice.request("DELETE", "/api/push/subscriptions", json=gone).json() == {
        "removed": False}
    assert httpx.get(f"{stack.first.url}/api/push/key").status_code == 401


def test_one_notification_per_event_for_the_owner_only(
        stack: Stack, scripted: ScriptedProvider, script_key: str) -> None:
    alice_phone, alice_laptop = stack.push.browser("alice-phone"), stack.push.browser("alice-pc")
    bob_browser = stack.push.browser("bob")
    _subscribe(stack.alice, alice_phone)
    _subscribe(stack.alice_b, alice_laptop)  # through the other replica: same Redis
    _subscribe(stack.bob, bob_browser)
    api = stack.alice

    # A sub-agent's bash permission (bash is "ask" in the test config).
    child_marker = scripted.script(script_key + "child", [
        [{"tool": "bash", "args": {"command": "echo push-child", "description": "echo"}}],
        [{"text": "Child finished."}]])
    marker = scripted.script(script_key, [
        [{"tool": "task", "args": {"description": "delegate", "subagent_type": "general",
                                   "prompt": f"run the echo {child_marker}"}}],
        [{"text": "The sub-agent is done."}]])
    parent = api.post("/api/sessions", json={"title": "push parent"}).json()["id"]
    assert api.post(f"/api/sessions/{parent}/prompt", json={"text": marker}).status_code == 202
    (asked,) = stack.push.wait_messages(alice_phone, 1)
    assert asked["kind"] == "permission"
    assert asked["sessionID"] == parent and asked["url"] == f"/?session={parent}"
    assert asked["title"] == "Permission needed: push parent"
    assert "bash" in asked["body"] and "echo push-child" not in str(asked)
    assert set(asked) == {"title", "body", "url", "tag", "kind", "sessionID"}
    pending = api.get(f"/api/sessions/{parent}/requests").json()["permissions"]
    assert asked["tag"] == f"permission:{pending[0]['id']}"
    assert pending[0]["sessionID"] != parent  # it was the sub-agent's
    answer = api.post(f"/api/sessions/{parent}/permissions/{pending[0]['id']}",
                      json={"reply": "once"})
    assert answer.status_code == 200, answer.text
    # The parent's turn ends: one "done" (the sub-agent's own turn end is not news).
    messages = stack.push.wait_messages(alice_phone, 2)
    assert [m["kind"] for m in messages] == ["permission", "idle"], messages
    assert messages[1]["sessionID"] == parent and messages[1]["body"].startswith("Finished")

    # A question.
    question = {"question": "Which colour for the push test?", "header": "Colour",
                "options": [{"label": "red", "description": "warm"},
                            {"label": "blue", "description": "cool"}]}
    asking_marker = scripted.script(script_key + "q", [
        [{"tool": "question", "args": {"questions": [question]}}], [{"text": "Blue it is."}]])
    asking = api.post("/api/sessions", json={"title": "push question"}).json()["id"]
    assert api.post(f"/api/sessions/{asking}/prompt",
                    json={"text": asking_marker}).status_code == 202
    messages = stack.push.wait_messages(alice_phone, 3)
    assert messages[2]["kind"] == "question" and messages[2]["sessionID"] == asking
    assert messages[2]["body"] == "Which colour for the push test?"
    qid = wait_for(lambda: api.get(f"/api/sessions/{asking}/requests").json()["questions"], 10,
                   "the pending question")[0]["id"]
    assert api.post(f"/api/sessions/{asking}/questions/{qid}",
                    json={"answers": [["blue"]]}).status_code == 200
    messages = stack.push.wait_messages(alice_phone, 4)
    assert messages[3]["kind"] == "idle" and messages[3]["sessionID"] == asking

    # A session error: a provider that cannot be reached. opencode retries it; the relay stops
    # it after one retry (RELAY_PROVIDER_RETRY_LIMIT) and that failure is notified (opencode
    # itself then reports only an abort). opencode 1.18.33 retries every HTTP error the
    # scripted provider can give (400, 401, 403, 404, 422, 5xx alike), so no plain
    # session.error is provoked here; tests/test_unit_push.py feeds the notifier one instead.
    broken = api.post("/api/sessions", json={"title": "push error"}).json()["id"]
    assert api.post(f"/api/sessions/{broken}/prompt",
                    json={"text": "hello", "model": "down/m"}).status_code == 202
    messages = stack.push.wait_messages(alice_phone, 5)
    assert [m["kind"] for m in messages] == ["permission", "idle", "question", "idle", "error"]
    assert messages[4]["sessionID"] == broken and messages[4]["title"] == "Error: push error"
    assert messages[4]["body"].startswith("The model provider 'down' could not be used")
    assert len(messages[4]["body"]) <= 120

    # Every browser of alice's got the same, each once; bob got nothing; nothing was refused.
    assert stack.push.messages(alice_laptop) == messages
    assert stack.push.messages(bob_browser) == []
    assert stack.push.problems() == []
    # Only the replica that ingests sent them; the standby one sent none.
    assert _pushes(stack.first, stack.root, "sent") >= 10
    assert _pushes(stack.second, stack.root, "sent") == 0


def test_a_team_request_reaches_its_admins_and_not_its_viewers(
        stack: Stack, scripted: ScriptedProvider, script_key: str) -> None:
    """A permission asked in a team's session goes to everyone who may answer it (its
    creator, the team's admins), each once; not to members who may not answer, viewers,
    outsiders (an admin of another team included). The turn's end goes to its creator."""
    suffix = uuid.uuid4().hex[:6]
    people = ("owner", "boss", "mia", "vera", "outsider")
    tokens = {who: make_token(stack.first, f"{who}-{suffix}") for who in people}
    ids = {who: token_id(stack.first, f"{who}-{suffix}") for who in people}
    red, blue = f"red-{suffix}", f"blue-{suffix}"
    for args in (("create", red), ("create", blue), ("add", red, ids["owner"], "member"),
                 ("add", red, ids["boss"], "admin"), ("add", red, ids["mia"], "member"),
                 ("add", red, ids["vera"], "viewer"), ("add", blue, ids["outsider"], "admin")):
        done = relay_cli(stack.first, "team", *args)
        assert done.returncode == 0, (args, done.stderr)
    clients = {who: httpx.Client(base_url=stack.first.url, headers=bearer(tokens[who]),
                                 timeout=60) for who in people}
    try:
        browsers = {who: stack.push.browser(f"team-{who}-{suffix}") for who in people}
        for who in people:
            _subscribe(clients[who], browsers[who])
        marker = scripted.script(script_key, [
            [{"tool": "bash", "args": {"command": "echo team-push", "description": "echo"}}],
            [{"text": "The team command ran."}]])
        owner, boss = clients["owner"], clients["boss"]
        created = owner.post("/api/sessions", json={"title": "team push", "team": red})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        assert owner.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code \
            == 202
        (asked,) = stack.push.wait_messages(browsers["boss"], 1)
        assert asked["kind"] == "permission" and asked["sessionID"] == sid
        assert asked["title"] == "Permission needed: team push"
        assert stack.push.messages(browsers["owner"]) == [asked]
        # The admin it reached may answer it.
        pending = boss.get(f"/api/sessions/{sid}/requests").json()["permissions"]
        assert asked["tag"] == f"permission:{pending[0]['id']}"
        answer = boss.post(f"/api/sessions/{sid}/permissions/{pending[0]['id']}",
                           json={"reply": "once"})
        assert answer.status_code == 200, answer.text
        # The turn's end is the creator's news only.
        messages = stack.push.wait_messages(browsers["owner"], 2)
        assert [m["kind"] for m in messages] == ["permission", "idle"], messages
        assert stack.push.messages(browsers["boss"]) == [asked]
        for who in ("mia", "vera", "outsider"):
            assert stack.push.messages(browsers[who]) == [], who
        assert stack.push.problems() == []
    finally:
        for client in clients.values():
            client.close()


def _pushes(relay: RelayProcess, headers: dict[str, str], outcome: str) -> float:
    metrics = httpx.get(f"{relay.url}/metrics", headers=headers, timeout=10)
    assert metrics.status_code == 200, metrics.text
    line = f'relay_push_notifications_total{{outcome="{outcome}"}} '
    found = [row for row in metrics.text.splitlines() if row.startswith(line)]
    assert found, metrics.text[-2000:]
    return float(found[0].split()[-1])


def test_a_gone_subscription_is_dropped(stack: Stack, scripted: ScriptedProvider,
                                        script_key: str) -> None:
    gone, kept = stack.push.browser("gone"), stack.push.browser("kept")
    principal = make_token(stack.first, f"carol-{uuid.uuid4().hex[:6]}")
    carol = httpx.Client(base_url=stack.first.url, headers=bearer(principal), timeout=60)
    try:
        _subscribe(carol, gone)
        _subscribe(carol, kept)
        stack.push.answers[gone.endpoint.rsplit("/", 1)[1]] = 410
        marker = scripted.script(script_key, [[{"text": "quick answer"}]])
        sid = carol.post("/api/sessions", json={"title": "push gone"}).json()["id"]
        assert carol.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code \
            == 200
        (done,) = stack.push.wait_messages(kept, 1)
        assert done["kind"] == "idle"
        # The push service said 410: the relay forgot that browser, and only that one.
        wait_for(lambda: carol.request("DELETE", "/api/push/subscriptions",
                                       json={"endpoint": gone.endpoint}).json() == {
                     "removed": False}, 10, "the gone subscription to be dropped")
        assert carol.request("DELETE", "/api/push/subscriptions",
                             json={"endpoint": kept.endpoint}).json() == {"removed": True}
    finally:
        carol.close()


def test_rotate_keys_replaces_the_key_and_drops_every_subscription(stack: Stack) -> None:
    browser = stack.push.browser("rotate")
    _subscribe(stack.alice, browser)
    before = stack.alice.get("/api/push/key").json()["publicKey"]
    done = relay_cli(stack.first, "push", "rotate-keys")
    assert done.returncode == 0, done.stderr
    after = done.stdout.strip()
    assert after != before and "dropped" in done.stderr
    assert "PRIVATE" not in done.stdout + done.stderr and len(unb64url(after)) == 65
    # Both replicas serve the new key at once; the old subscription is gone.
    assert stack.alice.get("/api/push/key").json()["publicKey"] == after
    assert stack.bob.get("/api/push/key").json()["publicKey"] == after
    assert stack.alice.request("DELETE", "/api/push/subscriptions",
                               json={"endpoint": browser.endpoint}).json() == {"removed": False}
    stack.push.vapid_key = after
