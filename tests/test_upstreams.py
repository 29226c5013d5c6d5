"""One relay in front of several opencode servers: each session's actions go to its own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opencode_relay.config import parse_servers
from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.stack import EventCollector, RelayProcess, start_opencode, wait_for

pytestmark = pytest.mark.integration


def test_server_lists_parse() -> None:
    assert parse_servers("http://a:1") == [("default", "http://a:1")]
    assert parse_servers("http://a:1/, http://b:2") == [("opencode-1", "http://a:1"),
                                                       ("opencode-2", "http://b:2")]
    assert parse_servers("gpu=http://a:1,cpu=https://b:2") == [("gpu", "http://a:1"),
                                                               ("cpu", "https://b:2")]
    for bad in ["", "x=ftp://a", "a=http://x,a=http://y", "bad name=http://x"]:
        try:
            parse_servers(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_sessions_live_on_their_own_server(
        tmp_path: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    second = start_opencode(tmp_path / "second", scripted)
    relay = RelayProcess(redis_server.url, f"main={opencode.url},second={second.url}",
                         tmp_path / "relay.log").start()
    try:
        api = httpx.Client(base_url=relay.url, timeout=60)
        oc_main = httpx.Client(base_url=opencode.url, timeout=60,
                               params={"directory": str(opencode.directory)})
        oc_second = httpx.Client(base_url=second.url, timeout=60,
                                 params={"directory": str(second.directory)})
        health = api.get("/api/health").json()
        assert [u["name"] for u in health["upstreams"]] == ["main", "second"]
        wait_for(lambda: all(u["events"] == "connected"
                             for u in api.get("/api/upstreams").json()["upstreams"]),
                 30, "both servers' event streams")
        assert api.post("/api/sessions", json={"upstream": "nowhere"}).status_code == 400
        assert api.get("/api/agents", params={"upstream": "second"}).json()["agents"]

        # Created through the relay on the second server.
        sid = api.post("/api/sessions", json={"title": "on second", "upstream": "second",
                                              "directory": str(second.directory)}).json()["id"]
        assert oc_second.get(f"/session/{sid}").status_code == 200
        assert oc_main.get(f"/session/{sid}").status_code == 404
        stream = EventCollector(f"{relay.url}/api/sessions/{sid}/events").start()
        marker = scripted.script(script_key, [[{"text": "answered by the second server"}]])
        assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
        stream.wait_for_type("session.idle")
        stream.close()
        assert_same_as_opencode(api, oc_second, sid)

        # Created straight on the second server: ingested from its stream, then driven.
        direct = oc_second.post("/session", json={"title": "made on second"}).json()["id"]
        wait_for(lambda: api.get(f"/api/sessions/{direct}").status_code == 200, 20,
                 "the relay to ingest the second server's session")
        again = scripted.script(script_key + "b", [[{"text": "driven through the relay"}]])
        assert api.post(f"/api/sessions/{direct}/messages", json={"text": again}).status_code == 200
        assert_same_as_opencode(api, oc_second, direct)

        # The default server still gets sessions that name no server.
        main_sid = api.post("/api/sessions", json={"title": "on main"}).json()["id"]
        assert oc_main.get(f"/session/{main_sid}").status_code == 200
        listed = {s["id"] for s in api.get("/api/sessions").json()["sessions"]}
        assert {sid, direct, main_sid} <= listed

        # A reconnect of the main server's stream must not remove the second's sessions.
        relay.stop()
        relay.start()
        assert api.get(f"/api/sessions/{sid}").status_code == 200
        assert_same_as_opencode(api, oc_second, sid)
    finally:
        relay.stop()
        second.stop()
