"""First run and providers, against the real opencode: the setup listing, setting a key (never
echoed), and a prompt to a provider that cannot be reached failing fast with a relay notice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from tests.support.secured import bearer, make_token
from tests.support.stack import EventCollector, RelayProcess, watched_session

pytestmark = pytest.mark.integration

SECRET = "sk-relay-test-SECRET-9f8e7d6c5b4a"


def test_setup_lists_providers_with_connection_and_methods(api: httpx.Client) -> None:
    answer = api.get("/api/providers/setup")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ready"] is True  # the test config connects `scripted`
    assert "scripted" in body["connected"] and "down" in body["connected"]
    assert "global" in body["scope"]
    by_id = {p["id"]: p for p in body["providers"]}
    assert by_id["scripted"]["connected"] is True and by_id["scripted"]["source"] == "config"
    assert by_id["anthropic"]["connected"] is False
    assert "ANTHROPIC_API_KEY" in by_id["anthropic"]["env"]
    assert by_id["anthropic"]["accepts_key"] is True
    assert body["providers"][0]["connected"] is True  # connected ones first


def test_setting_a_key_connects_the_provider_and_never_echoes_it(
        api: httpx.Client, relay: RelayProcess, opencode: EmbeddedOpencode) -> None:
    events = EventCollector(f"{relay.url}/api/events").start()
    try:
        answer = api.put("/api/providers/mistral/auth", json={"key": SECRET})
        assert answer.status_code == 200, answer.text
        assert answer.json()["connected"] is True and answer.json()["provider"] == "mistral"
        assert SECRET not in answer.text
        setup = api.get("/api/providers/setup")
        assert "mistral" in setup.json()["connected"]
        assert SECRET not in setup.text
        # Bad input: documented errors, and the key is in none of them.
        for path, body, status in [
                ("/api/providers/no-such-provider/auth", {"key": SECRET}, 404),
                ("/api/providers/mistral/auth", {"key": SECRET + " with space"}, 422),
                ("/api/providers/mistral/auth", {"key": ""}, 422),
                ("/api/providers/mistral/auth", {"key": SECRET, "extra": 1}, 422),
                ("/api/providers/bad%20id/auth", {"key": SECRET}, 400)]:
            refused = api.put(path, json=body)
            assert refused.status_code == status, (path, refused.text)
            assert SECRET not in refused.text
            assert refused.json()["error"]["code"]
        time.sleep(1)
    finally:
        events.close()
    assert all(SECRET not in e.data for e in events.events)
    assert SECRET not in Path(relay.log_path).read_text(errors="replace")
    # opencode keeps it in the store of its own HOME (the test's), not the user's.
    auth = opencode.home / "data" / "opencode" / "auth.json" if opencode.home else None
    assert auth is not None and json.loads(auth.read_text())["mistral"]["key"] == SECRET


def test_only_admins_set_keys_when_auth_is_on(stack_dir: Path, redis_server: EmbeddedRedis,
                                              opencode: EmbeddedOpencode) -> None:
    secured = RelayProcess(redis_server.url, opencode.url, stack_dir / "providers-auth.log",
                           extra_env={"RELAY_AUTH": "true"}).start()
    try:
        user, admin = make_token(secured, "user"), make_token(secured, "boss", admin=True)
        with httpx.Client(base_url=secured.url, timeout=30) as client:
            assert client.get("/api/providers/setup", headers=bearer(user)).status_code == 200
            refused = client.put("/api/providers/groq/auth", json={"key": SECRET},
                                 headers=bearer(user))
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
            assert SECRET not in refused.text
            anonymous = client.put("/api/providers/groq/auth", json={"key": SECRET})
            assert anonymous.status_code == 401
            allowed = client.put("/api/providers/groq/auth", json={"key": SECRET},
                                 headers=bearer(admin))
            assert allowed.status_code == 200, allowed.text
    finally:
        secured.stop()
    assert SECRET not in (stack_dir / "providers-auth.log").read_text(errors="replace")


def test_an_unreachable_provider_fails_fast_with_a_notice(
        api: httpx.Client, relay: RelayProcess) -> None:
    sid, stream = watched_session(api, relay.url, "unreachable provider")
    try:
        started = time.monotonic()
        sent = api.post(f"/api/sessions/{sid}/prompt",
                        json={"text": "hello", "model": "down/m"})
        assert sent.status_code == 202, sent.text
        notice = stream.wait_for_type("relay.session.failed", timeout=30)
        elapsed = time.monotonic() - started
        assert elapsed < 15, f"the failure took {elapsed:.1f}s"
        props = notice["properties"]
        assert props["sessionID"] == sid and props["provider"] == "down"
        assert "down" in props["message"] and "API key" in props["message"]
        stream.wait_for_type("session.idle", timeout=10,
                             where=lambda p: p["properties"]["sessionID"] == sid)
        assert api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle"
        # One notice: only the ingesting replica acts.
        time.sleep(2)
        assert stream.types().count("relay.session.failed") == 1
    finally:
        stream.close()
