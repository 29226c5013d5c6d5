"""Resume after a dropped client, opencode restarts, the relay restarting, and Redis down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis, free_port
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.stack import EventCollector, RelayProcess, start_opencode, wait_for

pytestmark = pytest.mark.integration


def slow_answer(steps: int, pause: float = 0.05) -> list[dict]:
    turn: list[dict] = [{"reasoning": "Thinking it through."}]
    for i in range(steps):
        turn += [{"sleep": pause}, {"text": f"chunk {i} "}]
    return [turn]


def test_client_resumes_with_last_event_id_without_missing_or_doubling(
        api: httpx.Client, oc: httpx.Client, relay: RelayProcess, scripted: ScriptedProvider,
        script_key: str) -> None:
    marker = scripted.script(script_key, slow_answer(40))
    sid = api.post("/api/sessions", json={"title": "resume"}).json()["id"]
    url = f"{relay.url}/api/sessions/{sid}/events"
    reference = EventCollector(url).start()
    first = EventCollector(url).start()
    try:
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        wait_for(lambda: len([e for e in first.events if e.id]) >= 15, 30, "some events")
        first.close()
        seen = [e for e in first.events if e.id]
        last_id = seen[-1].id
        # Events keep flowing while this client is away.
        wait_for(lambda: len([e for e in reference.events if e.id]) > len(seen) + 10, 30,
                 "events while disconnected")
        second = EventCollector(url, headers={"Last-Event-ID": last_id}).start()
        reference.wait_for_type("session.idle")
        second.wait_for_type("session.idle")
        # Both streams are live: compare once they have settled on the same events.
        def joined() -> list[tuple[str | None, str]]:
            return [(e.id, e.data) for e in seen + [e for e in second.events if e.id]]

        def everything() -> list[tuple[str | None, str]]:
            return [(e.id, e.data) for e in reference.events if e.id]

        try:
            wait_for(lambda: joined() == everything(), 10, "the resumed client to catch up")
        except AssertionError:
            assert joined() == everything()
        resumed = [e for e in second.events if e.id]
        # ?after= works like the header (EventSource cannot set headers on the first connect).
        third = EventCollector(f"{url}?after={last_id}").start()
        wait_for(lambda: len([e for e in third.events if e.id]) >= len(resumed), 10, "replay")
        assert [e.id for e in third.events if e.id][:len(resumed)] == [e.id for e in resumed]
        third.close()
        second.close()
    finally:
        reference.close()
        first.close()
    # The transcript's cursor hands over to the stream exactly.
    body = api.get(f"/api/sessions/{sid}/messages").json()
    assert body["cursor"] == [e.id for e in reference.events if e.id][-1]
    assert_same_as_opencode(api, oc, sid)


def test_global_stream_resumes_too(api: httpx.Client, relay: RelayProcess,
                                   scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "global stream check"}]])
    everything = EventCollector(f"{relay.url}/api/events").start()
    try:
        sid = api.post("/api/sessions", json={"title": "global"}).json()["id"]
        api.post(f"/api/sessions/{sid}/messages", json={"text": marker})
        everything.wait_for_type("session.idle",
                                 where=lambda p: p["properties"].get("sessionID") == sid)
        ids = [e.id for e in everything.events if e.id]
        middle = ids[len(ids) // 2]
        replay = EventCollector(f"{relay.url}/api/events",
                                headers={"Last-Event-ID": middle}).start()
        wait_for(lambda: len([e for e in replay.events if e.id]) >= len(ids) - len(ids) // 2 - 1,
                 10, "replayed events")
        replayed = [e.id for e in replay.events if e.id]
        assert replayed[:len(ids) - ids.index(middle) - 1] == ids[ids.index(middle) + 1:]
        replay.close()
        # The global stream carries the noise that session streams leave out.
        assert "plugin.added" in everything.types() or "sync" in everything.types()
    finally:
        everything.close()


@pytest.fixture()
def private_stack(tmp_path: Path, redis_server: EmbeddedRedis,
                  scripted: ScriptedProvider) -> Iterator[tuple[EmbeddedOpencode, RelayProcess]]:
    """An opencode and a relay of this test's own, so they can be restarted."""
    port = free_port()
    opencode = start_opencode(tmp_path / "oc", scripted, port=port)
    relay = RelayProcess(redis_server.url, opencode.url, tmp_path / "relay.log").start()
    yield opencode, relay
    relay.stop()
    opencode.stop()


def test_opencode_restart_while_the_relay_runs(
        tmp_path: Path, private_stack: tuple[EmbeddedOpencode, RelayProcess],
        scripted: ScriptedProvider, script_key: str) -> None:
    opencode, relay = private_stack
    api = httpx.Client(base_url=relay.url, timeout=60)
    oc = httpx.Client(base_url=opencode.url, timeout=60,
                      params={"directory": str(opencode.directory)})
    before = scripted.script(script_key + "a", [[{"text": "before the restart"}]])
    sid = api.post("/api/sessions", json={"title": "restart"}).json()["id"]
    assert api.post(f"/api/sessions/{sid}/messages", json={"text": before}).status_code == 200
    assert_same_as_opencode(api, oc, sid)

    opencode.stop()
    down = api.get("/api/health")
    assert down.status_code == 503 and down.json()["opencode"]["ok"] is False
    # Stored state stays readable while opencode is away; actions say opencode is down.
    assert api.get(f"/api/sessions/{sid}").status_code == 200
    assert len(api.get(f"/api/sessions/{sid}/messages").json()["messages"]) == 2
    failed = api.post(f"/api/sessions/{sid}/messages", json={"text": "hello?"})
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "opencode_unavailable"

    restarted = start_opencode(tmp_path / "oc", scripted, port=opencode.port)
    try:
        wait_for(lambda: api.get("/api/health").json()["opencode"]["events"] == "connected", 30,
                 "the relay to reconnect")
        after = scripted.script(script_key + "b", [[{"text": "after the restart"}]])
        assert api.post(f"/api/sessions/{sid}/messages", json={"text": after}).status_code == 200
        messages = assert_same_as_opencode(api, oc, sid)
        assert len(messages) == 4
    finally:
        restarted.stop()


def test_relay_restart_catches_up_with_what_happened_meanwhile(
        tmp_path: Path, private_stack: tuple[EmbeddedOpencode, RelayProcess],
        scripted: ScriptedProvider, script_key: str) -> None:
    opencode, relay = private_stack
    oc = httpx.Client(base_url=opencode.url, timeout=60,
                      params={"directory": str(opencode.directory)})
    # A session the relay has never seen, made straight in opencode before the relay notices.
    relay.stop()
    marker = scripted.script(script_key, [[{"text": "made while the relay was down"}]])
    sid = oc.post("/session", json={"title": "offline"}).json()["id"]
    assert oc.post(f"/session/{sid}/message",
                   json={"parts": [{"type": "text", "text": marker}]}).status_code == 200
    relay.start()
    api = httpx.Client(base_url=relay.url, timeout=60)
    assert_same_as_opencode(api, oc, sid)
    listed = [s["id"] for s in api.get("/api/sessions", params={"limit": 1000}).json()["sessions"]]
    assert sid in listed
    # And a deletion made while the relay was away removes the session from Redis.
    relay.stop()
    assert oc.delete(f"/session/{sid}").status_code == 200
    relay.start()
    wait_for(lambda: api.get(f"/api/sessions/{sid}").status_code == 404, 20, "removal")


def test_redis_stopped_after_start_gives_503_on_every_route_and_comes_back(
        tmp_path: Path, opencode: EmbeddedOpencode) -> None:
    """Redis down at start stops `serve` (tests/test_sentinel.py); going away later, every
    route that needs it says so with a 503, the event streams included, and the replica is
    not ready, but alive; when Redis is back, so is everything."""
    own = EmbeddedRedis(tmp_path / "redis").start()  # persistent: it comes back with its data
    relay = RelayProcess(own.url, opencode.url, tmp_path / "relay.log").start()
    try:
        api = httpx.Client(base_url=relay.url, timeout=15)
        sid = api.post("/api/sessions", json={"title": "before the outage"}).json()["id"]
        own.stop()
        for method, path, headers in [
                ("GET", "/api/sessions", {}), ("POST", "/api/sessions", {}),
                ("GET", f"/api/sessions/{sid}", {}), ("GET", f"/api/sessions/{sid}/messages", {}),
                ("GET", "/api/events", {}), ("GET", "/api/events", {"Last-Event-ID": "1-0"}),
                ("GET", f"/api/sessions/{sid}/events", {}), ("GET", "/api/search?q=outage", {}),
                ("GET", "/api/health", {})]:
            answer = api.request(method, path, headers=headers,
                                 json={} if method == "POST" else None)
            assert answer.status_code == 503, (path, answer.text)
            if path != "/api/health":  # the detailed health says which part is down instead
                assert answer.json()["error"] == {"code": "redis_unavailable",
                                                  "message": "Redis is unreachable"}, path
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"]["ok"] is False
        assert api.get("/healthz").status_code == 200  # alive: no restart needed
        own.start()  # the same port and data
        wait_for(lambda: api.get("/readyz").status_code == 200, 30, "readiness again")
        again = api.get(f"/api/sessions/{sid}")
        assert again.status_code == 200, again.text
        assert again.json()["session"]["title"] == "before the outage"
    finally:
        relay.stop()
        own.stop()
