"""Rate limits held in Redis, so they bind across relay replicas; nothing else is disturbed."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.secured import bearer, make_token
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration

LIMITS = {"RELAY_AUTH": "true", "RELAY_PROMPTS_PER_MINUTE": "3",
          "RELAY_STREAMS_PER_PRINCIPAL": "2", "RELAY_MAX_BODY_BYTES": "4000",
          "RELAY_STREAM_SLOT_TTL_SECONDS": "3",
          # The test client notices its own close() only when bytes arrive: keep them coming.
          "RELAY_HEARTBEAT_SECONDS": "1"}


@pytest.fixture(scope="module")
def pair(stack_dir: Path, redis_server: EmbeddedRedis,
         opencode: EmbeddedOpencode) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    prefix = f"rl-{uuid.uuid4().hex[:8]}:"
    first = RelayProcess(redis_server.url, opencode.url, stack_dir / "limit-a.log", prefix,
                         LIMITS).start()
    second = RelayProcess(redis_server.url, opencode.url, stack_dir / "limit-b.log", prefix,
                          LIMITS).start(wait_synced=False)
    yield first, second
    second.stop()
    first.stop()


def _session(relay: RelayProcess, token: str) -> str:
    made = httpx.post(f"{relay.url}/api/sessions", headers=bearer(token), json={"title": "rl"})
    assert made.status_code == 200, made.text
    return made.json()["id"]


def test_prompts_per_minute_hold_across_replicas(pair: tuple[RelayProcess, RelayProcess],
                                                 scripted: ScriptedProvider) -> None:
    a, b = pair
    alice, bob = make_token(a, "alice"), make_token(a, "bob")
    sid = _session(a, alice)
    marker = scripted.script(f"rl{uuid.uuid4().hex[:8]}", [[{"text": "ok"}]] * 3)
    # Three prompts, spread over both replicas, are all the minute allows.
    for relay in (a, b, a):
        sent = httpx.post(f"{relay.url}/api/sessions/{sid}/messages", headers=bearer(alice),
                          json={"text": marker}, timeout=60)
        assert sent.status_code == 200, sent.text
    for relay in (a, b):
        refused = httpx.post(f"{relay.url}/api/sessions/{sid}/prompt", headers=bearer(alice),
                             json={"text": marker})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Refused prompts reached nobody: still three exchanges.
    messages = httpx.get(f"{a.url}/api/sessions/{sid}/messages", headers=bearer(alice)).json()
    assert len(messages["messages"]) == 6
    # Alice can still read; bob's budget is his own.
    assert httpx.get(f"{b.url}/api/sessions/{sid}", headers=bearer(alice)).status_code == 200
    bob_sid = _session(b, bob)
    assert httpx.post(f"{b.url}/api/sessions/{bob_sid}/prompt", headers=bearer(bob),
                      json={"text": marker}).status_code == 202


def test_concurrent_streams_per_principal_across_replicas(
        pair: tuple[RelayProcess, RelayProcess], scripted: ScriptedProvider) -> None:
    a, b = pair
    carol, dave = make_token(a, "carol"), make_token(a, "dave")
    sid = _session(a, carol)
    first = EventCollector(f"{a.url}/api/sessions/{sid}/events", bearer(carol)).start()
    second = EventCollector(f"{b.url}/api/events", bearer(carol)).start()
    assert first.status == second.status == 200
    try:
        for relay in (a, b):
            refused = httpx.get(f"{relay.url}/api/events", headers=bearer(carol))
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # Another principal is not affected, and carol's open streams keep flowing.
        other = EventCollector(f"{b.url}/api/events", bearer(dave)).start()
        assert other.status == 200
        other.close()
        marker = scripted.script(f"st{uuid.uuid4().hex[:8]}", [[{"text": "still here"}]])
        assert httpx.post(f"{a.url}/api/sessions/{sid}/prompt", headers=bearer(carol),
                          json={"text": marker}).status_code == 202
        first.wait_for_type("session.idle")
        second.wait_for_type("session.idle")
        # A stream that ends gives its slot back.
        first.close()
        third = wait_for(lambda: _open_if_allowed(f"{b.url}/api/events", carol), 30,
                         "a slot to be released")
        third.close()
    finally:
        first.close()
        second.close()


def _open_if_allowed(url: str, token: str) -> EventCollector | None:
    stream = EventCollector(url, bearer(token)).start()
    if stream.status == 200:
        return stream
    stream.close()
    return None


def test_slots_of_a_replica_that_died_expire(stack_dir: Path, redis_server: EmbeddedRedis,
                                              opencode: EmbeddedOpencode) -> None:
    prefix = f"rl-{uuid.uuid4().hex[:8]}:"
    survivor = RelayProcess(redis_server.url, opencode.url, stack_dir / "limit-c.log", prefix,
                            LIMITS).start(wait_synced=False)
    doomed = RelayProcess(redis_server.url, opencode.url, stack_dir / "limit-d.log", prefix,
                          LIMITS).start(wait_synced=False)
    erin = make_token(survivor, "erin")
    streams = [EventCollector(f"{doomed.url}/api/events", bearer(erin)).start()
               for _ in range(2)]
    try:
        assert [s.status for s in streams] == [200, 200]
        assert httpx.get(f"{survivor.url}/api/events", headers=bearer(erin)).status_code == 429
        assert doomed.process is not None
        doomed.process.send_signal(signal.SIGKILL)  # no chance to release anything
        doomed.process.wait()
        revived = wait_for(lambda: _open_if_allowed(f"{survivor.url}/api/events", erin), 30,
                           "the dead replica's slots to lapse")
        revived.close()
    finally:
        for stream in streams:
            stream.close()
        doomed.stop()
        survivor.stop()


def test_request_body_size(pair: tuple[RelayProcess, RelayProcess]) -> None:
    a, b = pair
    frank = make_token(a, "frank")
    sid = _session(a, frank)
    big = {"text": "x" * 5000}
    for relay in (a, b):
        refused = httpx.post(f"{relay.url}/api/sessions/{sid}/prompt", headers=bearer(frank),
                             json=big)
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"title": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    chunked = httpx.patch(f"{a.url}/api/sessions/{sid}", headers={**bearer(frank),
                          "Content-Type": "application/json"}, content=chunks())
    assert chunked.status_code == 413
    small = httpx.patch(f"{a.url}/api/sessions/{sid}", headers=bearer(frank),
                        json={"title": "fits"})
    assert small.status_code == 200, small.text
