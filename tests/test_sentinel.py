"""Redis behind Sentinel, a primary killed mid-answer, and Redis that is wrong or gone.

Real processes throughout: a primary, a replica and three `redis-server --sentinel`
(tests/support/sentinel.py), `opencode serve` with the scripted model, and the relay as
`opencode-relay serve`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.config import Settings
from opencode_relay.events import PART_DELTA, RELAY_SESSION_SYNCED, SESSION_IDLE
from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis, free_port
from opencode_relay.store import connect
from opencode_relay.store.keys import Keys
from opencode_relay.store.replication import ReplicaWait
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.sentinel import MASTER, PASSWORD, SENTINEL_PASSWORD, SentinelGroup
from tests.support.stack import REFUSED_PORT, EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration

# One delta per step, a pause between them: an answer that streams for about ten seconds.
LONG_ANSWER = [step for i in range(120) for step in ({"text": f"w{i:03d} "}, {"sleep": 0.08})]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A Sentinel group that keeps its primary (the failover test makes its own)."""
    sentinels = SentinelGroup(tmp_path_factory.mktemp("sentinel")).start()
    yield sentinels
    sentinels.stop()


def test_primary_killed_mid_stream_the_relay_follows_the_promoted_replica(
        tmp_path: Path, opencode: EmbeddedOpencode, oc: httpx.Client,
        scripted: ScriptedProvider, script_key: str) -> None:
    sentinels = SentinelGroup(tmp_path / "redis").start()
    relay = RelayProcess("", opencode.url, tmp_path / "relay.log", extra_env={
        **sentinels.relay_env(), "RELAY_REDIS_WAIT_REPLICAS": "1",
        "RELAY_REDIS_WAIT_TIMEOUT_MS": "1000"})
    try:
        relay.start()
        api = httpx.Client(base_url=relay.url, timeout=60)
        sid = api.post("/api/sessions", json={"title": "failover"}).json()["id"]
        live = EventCollector(f"{relay.url}/api/sessions/{sid}/events").start()
        marker = scripted.script(script_key, [LONG_ANSWER])
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202

        def deltas(events: list[dict]) -> list[dict]:
            return [e for e in events if e.get("type") == PART_DELTA]

        wait_for(lambda: len(deltas(live.payloads())) >= 20, 30, "the answer to be streaming")
        seen = [(e.id, e.data) for e in list(live.events) if e.id]
        sentinels.kill(sentinels.primary_port)  # mid-answer: SIGKILL, nothing flushed
        wait_for(lambda: sentinels.primary() == sentinels.replica_port, 30,
                 "the Sentinels to promote the replica")

        # The relay found the new primary by itself: the open stream goes on to the end.
        live.wait_for_type(SESSION_IDLE, 60)
        wait_for(lambda: relay_ready(relay), 30, "the relay to be ready on the new primary")
        live.close()

        # Everything a client was sent before the kill is on the promoted replica, same ids.
        logged = {raw_id.decode(): fields[b"e"].decode() for raw_id, fields in
                  sentinels.data(sentinels.replica_port).xrange(
                      Keys(relay.prefix).session_events(sid))}
        assert seen and all(logged.get(event_id) == data for event_id, data in seen)

        # A client resuming after its last id before the kill gets the rest, nothing twice.
        resumed = EventCollector(f"{relay.url}/api/sessions/{sid}/events",
                                 headers={"Last-Event-ID": seen[-1][0]}).start()
        resumed.wait_for_type(SESSION_IDLE, 30)
        resumed.close()
        ids = [event_id for event_id, _ in seen] + [e.id for e in resumed.events if e.id]
        assert len(ids) == len(set(ids)), "an event was sent twice"
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        payloads = [json.loads(d) for _, d in seen] + resumed.payloads()
        words = "".join(e["properties"]["delta"] for e in deltas(payloads)).split()
        answer = "".join(step["text"] for step in LONG_ANSWER if "text" in step).split()
        remaining = iter(answer)
        assert all(word in remaining for word in words), words  # in order, none twice
        # What opencode streamed while no primary could take writes never reached the log (the
        # ingestor re-reads opencode's state after the outage): the client is told to refetch.
        synced = any(p.get("type") == RELAY_SESSION_SYNCED
                     and p["properties"].get("sessionID") == sid for p in resumed.payloads())
        assert words == answer or synced, words
        assert "w119" in json.dumps(assert_same_as_opencode(api, oc, sid))
    finally:
        relay.stop()
        sentinels.stop()


def relay_ready(relay: RelayProcess) -> bool:
    return httpx.get(f"{relay.url}/readyz", timeout=5).status_code == 200


def failed_start(env: dict[str, str], tmp_path: Path, *command: str) -> str:
    """`serve` (or another command) with this Redis configuration: it must exit non-zero with
    one line, no traceback, and that line is returned."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("REDIS_", "RELAY_REDIS_"))}
    full.update(OPENCODE_SERVER_URL=f"http://127.0.0.1:{REFUSED_PORT}",
                RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_REDIS_START_TIMEOUT_SECONDS="1",
                **env)
    done = subprocess.run([sys.executable, "-m", "opencode_relay.cli",
                           *(command or ("serve", "--port", str(free_port())))],
                          env=full, capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("opencode-relay: ")
    return lines[0]


def test_a_redis_configuration_that_cannot_work_stops_the_start_in_one_line(
        group: SentinelGroup, tmp_path: Path) -> None:
    assert "REDIS_URL must start with redis://" in failed_start(
        {"REDIS_URL": "http://127.0.0.1:6379"}, tmp_path)
    assert "REDIS_URL cannot be parsed" in failed_start(
        {"REDIS_URL": "redis://127.0.0.1:notaport/0"}, tmp_path)
    down = f"redis://127.0.0.1:{free_port()}/0"
    line = failed_start({"REDIS_URL": down}, tmp_path)
    assert f"Redis at {down} cannot be reached" in line and "fix REDIS_URL" in line
    # The operator commands say it the same way.
    assert failed_start({"REDIS_URL": down}, tmp_path, "token", "list") == \
        line.removesuffix(" (waited 1s)")  # they do not wait: no server to keep up

    sentinels = group.relay_env()
    line = failed_start({**sentinels, "RELAY_REDIS_MASTER": "no-such-primary"}, tmp_path)
    assert "watch no primary named 'no-such-primary'" in line and repr(MASTER) in line
    nowhere = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    line = failed_start({**sentinels, "RELAY_REDIS_SENTINELS": nowhere}, tmp_path)
    assert f"none of the Sentinels in RELAY_REDIS_SENTINELS ({nowhere.replace(',', ', ')})" \
        in line
    assert "RELAY_REDIS_PASSWORD" in failed_start(
        {**sentinels, "RELAY_REDIS_PASSWORD": "wrong"}, tmp_path)
    assert "RELAY_REDIS_SENTINEL_PASSWORD" in failed_start(
        {**sentinels, "RELAY_REDIS_SENTINEL_PASSWORD": "wrong"}, tmp_path)
    assert "RELAY_REDIS_SENTINELS needs RELAY_REDIS_MASTER" in failed_start(
        {"RELAY_REDIS_SENTINELS": group.sentinels}, tmp_path)
    assert "set either REDIS_URL or RELAY_REDIS_SENTINELS" in failed_start(
        {**sentinels, "REDIS_URL": "redis://127.0.0.1:6379/0"}, tmp_path)


def test_serve_waits_a_bounded_time_for_a_redis_that_starts_late(
        tmp_path: Path, opencode: EmbeddedOpencode) -> None:
    late = EmbeddedRedis(tmp_path / "redis")  # its port is chosen; nothing listens yet
    timer = threading.Timer(2.0, late.start)
    relay = RelayProcess(late.url, opencode.url, tmp_path / "relay.log",
                         extra_env={"RELAY_REDIS_START_TIMEOUT_SECONDS": "30"})
    timer.start()
    try:
        relay.start()
        assert httpx.get(f"{relay.url}/api/sessions", timeout=10).status_code == 200
    finally:
        timer.join()
        relay.stop()
        late.stop()


def test_through_sentinel_the_relay_serves(group: SentinelGroup, opencode: EmbeddedOpencode,
                                           tmp_path: Path) -> None:
    relay = RelayProcess("", opencode.url, tmp_path / "relay.log",
                         extra_env=group.relay_env()).start()
    try:
        created = httpx.post(f"{relay.url}/api/sessions", json={"title": "via sentinel"},
                             timeout=30)
        assert created.status_code == 200, created.text
        key = Keys(relay.prefix).session(created.json()["id"])
        assert group.data(group.primary_port).exists(key)  # written to the primary it named
        wait_for(lambda: group.data(group.replica_port).exists(key), 10, "replication")
    finally:
        relay.stop()


async def test_the_ingest_commit_waits_for_the_replica(group: SentinelGroup) -> None:
    """RELAY_REDIS_WAIT_REPLICAS: WAIT counts the writes of its own connection, so ReplicaWait
    writes a marker on the connection it waits on; a WAIT on a connection without writes would
    say "1 replica" even with the replica stopped."""
    settings = Settings(redis_sentinels=group.sentinels, redis_master=MASTER,
                        redis_password=PASSWORD, redis_sentinel_password=SENTINEL_PASSWORD)
    redis = connect.redis_client(settings)
    wait = ReplicaWait(redis, f"replication-test-{free_port()}", replicas=1, timeout_ms=300)
    replica = group.servers[group.replica_port]
    try:
        await redis.xadd("replication-test-log", {"e": "committed"})
        assert await wait() == 1
        replica.send_signal(signal.SIGSTOP)  # connected, but it acknowledges nothing
        try:
            await redis.xadd("replication-test-log", {"e": "not replicated yet"})
            assert await wait() == 0
            assert wait.short
        finally:
            replica.send_signal(signal.SIGCONT)
        assert await wait() == 1
        assert not wait.short
    finally:
        await connect.close(redis)
