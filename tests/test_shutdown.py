"""SIGTERM during a stream: clients are told to go, the restart loses nothing, clients resume."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.redis_under_test import sync_redis_client
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration


def test_sigterm_mid_stream_then_restart_and_resume(
        redis_server: EmbeddedRedis, opencode: EmbeddedOpencode, oc: httpx.Client,
        scripted: ScriptedProvider, tmp_path: Path) -> None:
    log = tmp_path / "relay.log"
    first = RelayProcess(redis_server.url, opencode.url, log).start()
    prefix = first.prefix
    turn: list[dict] = [{"text": "start "}]
    # Long enough (15 s) that the restart lands mid-answer even on a loaded machine: events that
    # opencode sends while no relay runs reach the log only as a re-read snapshot (issue 11).
    for i in range(150):
        turn += [{"sleep": 0.1}, {"text": f"chunk{i} "}]
    marker = scripted.script(f"sd{uuid.uuid4().hex[:8]}", [turn])
    api = httpx.Client(base_url=first.url, timeout=60)
    sid = api.post("/api/sessions", json={"title": "shutdown"}).json()["id"]
    url = f"/api/sessions/{sid}/events"
    before = EventCollector(first.url + url).start()
    assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
    wait_for(lambda: len([e for e in before.events if e.id]) >= 10, 30, "some events")

    assert first.process is not None
    first.process.terminate()  # SIGTERM
    first.process.wait(timeout=30)
    before.wait_for_type("relay.shutdown", timeout=5)
    before.close()
    text = log.read_text()
    # The streams were ended by the relay, not cut by uvicorn's graceful-shutdown timeout.
    assert "event streams ended for shutdown (0 still open)" in text
    assert "timeout graceful shutdown exceeded" not in text
    seen = [e for e in before.events if e.id]

    second = RelayProcess(redis_server.url, opencode.url, log, prefix=prefix).start()
    try:
        after = EventCollector(second.url + url, headers={"Last-Event-ID": seen[-1].id}).start()
        client = sync_redis_client(redis_server.url)

        def logged(until: str = "+") -> list[str]:
            return [i.decode() for i, _ in client.xrange(Keys(prefix).session_events(sid),
                                                         min=seen[0].id, max=until)]

        try:
            after.wait_for_type("session.idle", timeout=60)
            # Events keep coming a moment after idle (final message updates): wait until the
            # client has read as far as the log goes, then compare.
            wait_for(lambda: [e.id for e in after.events if e.id][-1:] == logged()[-1:], 15,
                     "the resumed stream to reach the end of the log")
            resumed = [e for e in after.events if e.id]
        finally:
            after.close()
        got = [e.id for e in seen + resumed]
        assert len(got) == len(set(got)), "an event was sent twice"
        assert got == sorted(got, key=lambda i: tuple(int(p) for p in i.split("-")))
        # Nothing lost: the client got every entry of the session's log since its first one
        # (up to where it stopped reading).
        assert got == logged(until=got[-1])
        # And the state after the restart is opencode's, the whole answer included.
        messages = assert_same_as_opencode(httpx.Client(base_url=second.url, timeout=60), oc, sid)
        text_parts = [p["text"] for p in messages[-1]["parts"] if p["type"] == "text"]
        assert "chunk149" in "".join(text_parts)
        types = [json.loads(e.data)["type"] for e in resumed]
        assert "session.idle" in types
    finally:
        second.stop()
