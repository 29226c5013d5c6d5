"""Failover without gaps: after the ingesting replica dies, or opencode's event stream drops,
mid-answer, a client's stream still carries every durable event of the answer exactly once, in
opencode's order, and ends with the session idle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from opencode_relay import events
from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.proxy import CuttableProxy
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration


def long_answer(project: Path, key: str, steps: int, pause: float = 0.1) -> list[list[dict]]:
    """An answer of `steps` model turns, each streaming text then writing a file, so durable
    events (messages, step, text and tool parts) keep coming for about `steps` seconds."""
    turns: list[list[dict]] = []
    for i in range(steps):
        turn: list[dict] = [{"reasoning": f"Turn {i}."}]
        for j in range(8):
            turn += [{"sleep": pause}, {"text": f"turn {i} chunk {j} "}]
        turn.append({"tool": "write", "args": {"filePath": str(project / f"{key}-{i}.txt"),
                                               "content": f"{i}\n"}})
        turns.append(turn)
    turns.append([{"sleep": pause}, {"text": "All files are written."}])
    return turns


def durable_history(oc: httpx.Client, sid: str) -> list[dict[str, Any]]:
    """opencode's own durable history of the session, in sequence order."""
    rows = oc.post("/sync/history", json={}).json()
    return sorted((r for r in rows if r["aggregate_id"] == sid), key=lambda r: r["seq"])


def tools_completed(collector: EventCollector) -> int:
    return sum(1 for p in collector.payloads()
               if p.get("type") == events.PART_UPDATED
               and p["properties"]["part"].get("type") == "tool"
               and p["properties"]["part"].get("state", {}).get("status") == "completed")


def assert_every_durable_event_once_in_order(collector: EventCollector, oc: httpx.Client,
                                             sid: str) -> list[str]:
    """Waits until opencode is idle and the stream has caught up, then compares the stream's
    durable events with opencode's history: same ids, same order, each once, same content."""
    wait_for(lambda: sid not in oc.get("/session/status").json(), 90, "opencode to finish")

    def streamed() -> list[dict[str, Any]]:
        return [p for p in collector.payloads() if p.get("type") in events.DURABLE]

    def caught_up() -> bool:
        return [p["id"] for p in streamed()] == [r["id"] for r in durable_history(oc, sid)]

    try:
        wait_for(caught_up, 30, "the stream to carry opencode's whole durable history")
    except AssertionError:
        theirs = [(r["seq"], r["id"], r["type"]) for r in durable_history(oc, sid)]
        ours = [(p["id"], p["type"]) for p in streamed()]
        assert ours == [(i, t.rsplit(".", 1)[0]) for _, i, t in theirs]  # shows the difference
        raise
    history = durable_history(oc, sid)
    # Same types; the content is compared as state (assert_same_as_opencode): opencode's live
    # event may carry fields its object gained before it was sent (a message's `completed`),
    # its history the event as committed.
    for payload, row in zip(streamed(), history, strict=True):
        assert payload["type"] == row["type"].rsplit(".", 1)[0]
        assert payload["properties"].keys() == row["data"].keys()
    statuses = [p["properties"]["status"]["type"] for p in collector.payloads()
                if p.get("type") == events.SESSION_STATUS_CHANGED]
    assert statuses and statuses[-1] == "idle"
    return [r["id"] for r in history]


# 22 turns outlast the lease (10 s): the survivor replays, then goes on live. 5 turns end
# before it takes over: the end of the answer, and its idle status, come from the replay alone.
@pytest.mark.parametrize("steps", [22, 5])
def test_sigkill_of_the_ingesting_replica_mid_answer_loses_no_durable_event(
        tmp_path: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        oc: httpx.Client, scripted: ScriptedProvider, script_key: str, steps: int) -> None:
    first = RelayProcess(redis_server.url, opencode.url, tmp_path / "a.log").start()
    second = RelayProcess(redis_server.url, opencode.url, tmp_path / "b.log",
                          prefix=first.prefix).start(wait_synced=False)
    on_b: EventCollector | None = None
    try:
        b = httpx.Client(base_url=second.url, timeout=60)
        assert b.get("/api/health").json()["opencode"]["events"] == "standby"
        marker = scripted.script(script_key,
                                 long_answer(opencode.directory, script_key, steps))
        sid = b.post("/api/sessions", json={"title": "gapless takeover"}).json()["id"]
        # From the session's first event (a client that was there all along).
        on_b = EventCollector(f"{second.url}/api/sessions/{sid}/events?after=0").start()
        assert b.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        wait_for(lambda: tools_completed(on_b) >= 2, 60, "the answer to be under way")
        assert first.process is not None
        first.process.kill()  # SIGKILL: no shutdown, the lease lapses on its own
        first.process.wait()
        seen_at_kill = len([p for p in on_b.payloads() if p.get("type") in events.DURABLE])
        wait_for(lambda: b.get("/api/health").json()["opencode"]["events"] == "connected", 40,
                 "the surviving replica to take over")
        ids = assert_every_durable_event_once_in_order(on_b, oc, sid)
        assert len(ids) > seen_at_kill + 10  # the test covers a real part of the answer
        assert tools_completed(on_b) == steps
        assert_same_as_opencode(b, oc, sid)
        metrics = b.get("/metrics").text
        replayed = [line for line in metrics.splitlines()
                    if line.startswith("relay_events_replayed_total")]
        assert replayed and float(replayed[0].rsplit(" ", 1)[1]) > 0
    finally:
        if on_b is not None:
            on_b.close()
        first.stop()
        second.stop()


def test_opencode_stream_cut_mid_answer_loses_no_durable_event(
        tmp_path: Path, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        oc: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    proxy = CuttableProxy("127.0.0.1", opencode.port).start()
    relay = RelayProcess(redis_server.url, proxy.url, tmp_path / "relay.log").start()
    collector: EventCollector | None = None
    try:
        api = httpx.Client(base_url=relay.url, timeout=60)
        marker = scripted.script(script_key,
                                 long_answer(opencode.directory, script_key, steps=12))
        sid = api.post("/api/sessions", json={"title": "gapless reconnect"}).json()["id"]
        collector = EventCollector(f"{relay.url}/api/sessions/{sid}/events?after=0").start()
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        wait_for(lambda: tools_completed(collector) >= 2, 60, "the answer to be under way")
        proxy.down()  # the relay's connection to opencode drops, and stays down a while
        seen = len([p for p in collector.payloads() if p.get("type") in events.DURABLE])
        wait_for(lambda: len(durable_history(oc, sid)) > seen + 15, 30,
                 "opencode to go on answering meanwhile")
        proxy.up()
        ids = assert_every_durable_event_once_in_order(collector, oc, sid)
        assert tools_completed(collector) == 12
        assert len(ids) > seen + 15
        assert_same_as_opencode(api, oc, sid)
    finally:
        if collector is not None:
            collector.close()
        relay.stop()
        proxy.stop()
