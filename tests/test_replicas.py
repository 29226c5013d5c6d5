"""Several relay replicas on one Redis: one ingests, all serve, another takes over."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration


def test_two_replicas_share_one_log_and_fail_over(
        tmp_path: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        oc: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    first = RelayProcess(redis_server.url, opencode.url, tmp_path / "a.log").start()
    second = RelayProcess(redis_server.url, opencode.url, tmp_path / "b.log",
                          prefix=first.prefix).start(wait_synced=False)
    try:
        a = httpx.Client(base_url=first.url, timeout=60)
        b = httpx.Client(base_url=second.url, timeout=60)
        assert b.get("/api/health").json()["opencode"]["events"] == "standby"
        marker = scripted.script(script_key, [[{"text": "served by both replicas"}]])
        sid = a.post("/api/sessions", json={"title": "replicas"}).json()["id"]
        # Both from the session log's start (a stream opened without a cursor begins with
        # whatever its replica hands out after it opened: the two open at different moments).
        on_a = EventCollector(f"{first.url}/api/sessions/{sid}/events?after=0").start()
        on_b = EventCollector(f"{second.url}/api/sessions/{sid}/events?after=0").start()
        assert a.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
        on_a.wait_for_type("session.idle")
        on_b.wait_for_type("session.idle")
        # Same events, same ids, each once: only one replica ingested.
        def same_on_both() -> bool:
            sent_a = [(e.id, e.data) for e in on_a.events if e.id]
            sent_b = [(e.id, e.data) for e in on_b.events if e.id]
            assert sent_a == sent_b, f"a: {[i for i, _ in sent_a]}, b: {[i for i, _ in sent_b]}"
            return True

        wait_for(same_on_both, 10, "both replicas to have sent the same events")
        upstream_ids = [json.loads(e.data).get("id") for e in on_b.events if e.id]
        assert len(upstream_ids) == len(set(upstream_ids))
        assert_same_as_opencode(b, oc, sid)
        on_a.close()
        on_b.close()

        first.stop()  # the ingesting replica goes away; the lease lapses and the other takes over
        wait_for(lambda: b.get("/api/health").json()["opencode"]["events"] == "connected", 30,
                 "the standby replica to take over ingestion")
        again = scripted.script(script_key + "2", [[{"text": "after fail-over"}]])
        assert b.post(f"/api/sessions/{sid}/messages", json={"text": again}).status_code == 200
        assert len(assert_same_as_opencode(b, oc, sid)) == 4
    finally:
        first.stop()
        second.stop()
