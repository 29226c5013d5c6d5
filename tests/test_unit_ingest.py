"""Unit tests of the ingest side against a real Redis (own server): lease, batches, handlers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from opencode_relay import events as event_types
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.ingest.leader import Lease
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import ZERO, EventId, EventLog
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from tests.test_unit_core import SID, CountingRedis, ev, parts, session_info, text_part

pytestmark = pytest.mark.unit

__all__ = ["parts"]  # a fixture, shared with test_unit_core


async def test_the_lease_has_one_holder_lapses_unrenewed_and_is_released(redis: Redis,
                                                                        keys: Keys) -> None:
    key = keys.ingest_leader("default")
    # TTLs and waits leave over a second of slack either way: a busy machine must not decide.
    ttl = 1.5
    first, second = Lease(redis, key, ttl_seconds=ttl), Lease(redis, key, ttl_seconds=ttl)
    assert await first.acquire() and not await second.acquire()
    assert await first.acquire()  # held: asking again renews it
    await asyncio.sleep(0.2)
    assert await first.renew() and not await second.renew()
    assert not await second.acquire()  # renewed just now: still held
    await asyncio.sleep(ttl + 0.3)  # not renewed: it lapses and the other relay takes it
    assert await second.acquire()
    assert not await first.renew()  # the first relay learns it lost the lease
    await first.release()  # releasing a lost lease leaves the new holder's alone
    assert await redis.get(key) is not None
    await second.release()
    assert await redis.get(key) is None
    assert await first.acquire()
    await first.release()


async def test_releasing_the_lease_on_a_dead_redis_logs_no_error(
        caplog: pytest.LogCaptureFixture, tmp_path: Path, keys: Keys) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = Redis.from_url(server.url, socket_connect_timeout=1)
    try:
        lease = Lease(client, keys.ingest_leader("default"), ttl_seconds=5)
        assert await lease.acquire()
        server.stop()
        with caplog.at_level(logging.DEBUG, logger="opencode_relay"):
            await lease.release()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "not released" in caplog.text
    finally:
        await client.aclose()
        server.stop()


def test_every_stateful_event_type_has_a_handler_and_no_other_does() -> None:
    ingestor = Ingestor(None, None, None, None)  # type: ignore[arg-type]
    assert set(ingestor._handlers) == event_types.STATEFUL


@pytest.fixture()
async def private_redis(tmp_path: Path) -> AsyncIterator[Redis]:
    """A Redis of the test's own, so its command statistics count only what the test does."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = Redis.from_url(server.url)
    yield client
    await client.aclose()
    server.stop()


async def transactions(redis: Redis) -> tuple[int, int]:
    stats = await redis.info("commandstats")
    return tuple(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0))  # type: ignore[return-value]
                 for c in ("multi", "exec"))


async def test_a_batch_with_a_deletion_in_it_is_one_transaction(private_redis: Redis,
                                                                keys: Keys) -> None:
    redis = private_redis
    store, log = StateStore(redis, keys), EventLog(redis, keys, 10_000, 10_000)
    ingestor = Ingestor(redis, None, store, log)  # type: ignore[arg-type]
    a, b, child = "ses_a", "ses_b", "ses_a_child"
    await ingestor.apply([
        ev("session.created", info=session_info(a)),
        ev("session.created", info=session_info(child, parent=a)),
        ev("session.created", info=session_info(b)),
        ev("message.updated", info={"id": "msg_a", "sessionID": a, "role": "user"}),
        ev("message.part.updated", part=text_part("prt_a", "msg_a", "kept until deleted", a)),
    ])
    assert await store.child_ids(a) == [child]
    await redis.config_resetstat()
    await ingestor.apply([
        ev("message.part.updated", part=text_part("prt_a", "msg_a", "edited, then deleted", a)),
        ev("session.deleted", info=session_info(a)),
        ev("message.updated", info={"id": "msg_b", "sessionID": b, "role": "user"}),
    ])
    assert await transactions(redis) == (1, 1)
    assert await store.get_session(a) is None and await store.get_part(a, "prt_a") is None
    assert await store.session_of_message("msg_a") is None
    assert sorted(await store.list_session_ids()) == sorted([b, child])
    assert await store.message_ids(b) == ["msg_b"]
    assert await store.session_of_message("msg_b") == b
    left = sorted([k.decode() async for k in redis.scan_iter(f"{keys.prefix}*{{{a}}}*")])
    assert left == [keys.session_events(a)]  # only its log, expiring
    assert await redis.ttl(keys.session_events(a)) > 0
    logged = [e async for e in log.read_entries_after(keys.events, EventId(0, 0))]
    assert [json.loads(e.data)["type"] for e in logged[-3:]] == [
        "message.part.updated", "session.deleted", "message.updated"]


async def test_a_batch_is_cut_at_batch_size_log_entries_a_run_of_deltas_being_one(
        private_redis: Redis, keys: Keys) -> None:
    redis = private_redis
    store, log = StateStore(redis, keys), EventLog(redis, keys, 100_000, 100_000)
    ingestor = Ingestor(redis, None, store, log, batch_size=100)  # type: ignore[arg-type]
    await ingestor.apply([ev("session.created", info=session_info()),
                          ev("message.part.updated", part=text_part("prt_1"))])

    def deltas(count: int, tag: str) -> list[dict]:
        return [ev("message.part.delta", sessionID=SID, messageID="msg_a", partID="prt_1",
                   field="text", delta=f"{tag}{n} ") for n in range(count)]

    async def commits(events: list[dict]) -> int:
        await redis.config_resetstat()
        await ingestor.apply(events)
        multi, exec_ = await transactions(redis)
        assert multi == exec_
        # The scripts go with the transaction (EVAL): no SCRIPT EXISTS round trip before it.
        assert not [c for c in await redis.info("commandstats") if c.startswith("cmdstat_script")]
        return exec_

    # 700 deltas of one part are one log entry: one transaction, not one per 100 events.
    assert await commits(deltas(700, "a")) == 1
    # 250 entries: cut every 100.
    statuses = [ev("session.status", sessionID=SID, status={"type": "busy"})] * 250
    assert await commits(statuses) == 3
    # A batch stages at most 8 events per entry it may hold (staging stays short).
    assert await commits(deltas(1000, "b")) == 2
    expected = "".join(f"a{n} " for n in range(700)) + "".join(f"b{n} " for n in range(1000))
    assert (await store.get_part(SID, "prt_1"))["text"] == expected
    logged = [json.loads(e.data) async for e in log.read_entries_after(keys.events, ZERO)]
    assert [p["properties"]["delta"] for p in logged if p["type"] == "message.part.delta"] == [
        "".join(f"a{n} " for n in range(700)), "".join(f"b{n} " for n in range(800)),
        "".join(f"b{n} " for n in range(800, 1000))]
    assert sum(p["type"] == "session.status" for p in logged) == 250


async def test_a_removal_takes_what_the_same_batch_wrote_before_it(parts) -> None:
    store, log, ingestor = parts
    message = {"id": "msg_a", "sessionID": SID, "role": "assistant"}
    await ingestor.apply([ev("session.created", info=session_info()),
                          ev("message.updated", info=message),
                          ev("message.part.updated", part=text_part("prt_1", text="one")),
                          ev("message.part.updated", part=text_part("prt_2", text="two"))])
    ingestor._parts.clear()  # prt_2 is read from Redis by the delta below: it must stay gone
    await ingestor.apply([
        ev("message.part.updated", part=text_part("prt_3", text="new in this batch")),
        ev("message.removed", sessionID=SID, messageID="msg_a"),
        ev("message.part.delta", sessionID=SID, messageID="msg_a", partID="prt_2",
           field="text", delta=" and more"),
        ev("message.part.delta", sessionID=SID, messageID="msg_a", partID="prt_3",
           field="text", delta=" and more"),
    ])
    assert await store.message_ids(SID) == []
    for pid in ("prt_1", "prt_2", "prt_3"):
        assert await store.get_part(SID, pid) is None
    # Written again after its removal, in the same batch: the later event wins.
    await ingestor.apply([
        ev("message.removed", sessionID=SID, messageID="msg_a"),
        ev("message.updated", info=message),
        ev("message.part.updated", part=text_part("prt_4", text="back")),
        ev("message.part.delta", sessionID=SID, messageID="msg_a", partID="prt_4",
           field="text", delta=" again"),
    ])
    assert await store.message_ids(SID) == ["msg_a"]
    assert (await store.get_part(SID, "prt_4"))["text"] == "back again"


async def test_deltas_are_joined_onto_their_part_in_order_across_replacements(parts) -> None:
    store, log, ingestor = parts

    def delta(text: str, field: str = "text", pid: str = "prt_1") -> dict:
        return ev("message.part.delta", sessionID=SID, messageID="msg_a", partID=pid,
                  field=field, delta=text)

    await ingestor.apply([ev("session.created", info=session_info()),
                          ev("message.part.updated", part=text_part("prt_1", text="a"))])
    await ingestor.apply([
        delta("b"), delta("c"), delta("x", field="reasoning"),
        # Replaced in the middle of the batch: the update carries the whole text, the deltas
        # after it go on from there, and the earlier ones stay out.
        ev("message.part.updated", part=text_part("prt_1", text="ABC")),
        delta("d"), delta("e"),
        delta(["not", "text"]),  # logged as it came, changes nothing
    ])
    part = await store.get_part(SID, "prt_1")
    assert part["text"] == "ABCde" and "reasoning" not in part
    assert ingestor._parts["prt_1"]["text"] == "ABCde"  # the cache holds what Redis holds
    await ingestor.apply([delta("f"), delta("y", field="reasoning"), delta("g")])
    part = await store.get_part(SID, "prt_1")
    assert (part["text"], part["reasoning"]) == ("ABCdefg", "y")
    logged = [json.loads(e.data) async for e in log.read_entries_after(log.keys.events, ZERO)]
    # A run of deltas to one field is one entry; the other field's delta, the update and the
    # bad delta each end the run before them.
    assert [e["properties"].get("delta") for e in logged
            if e["type"] == "message.part.delta"] == [
        "bc", "x", "de", ["not", "text"], "f", "y", "g"]


async def test_a_run_of_deltas_is_one_log_entry_unless_its_sessions_log_something_between(
        parts) -> None:
    store, log, ingestor = parts
    other, child = "ses_unit0002", "ses_unit0003"

    def delta(text: str, sid: str = SID, pid: str = "prt_1") -> dict:
        return ev("message.part.delta", sessionID=sid, messageID="msg_a", partID=pid,
                  field="text", delta=text)

    await ingestor.apply([
        ev("session.created", info=session_info()),
        ev("session.created", info=session_info(other)),
        ev("session.created", info=session_info(child, parent=SID)),
        ev("message.part.updated", part=text_part("prt_1")),
        ev("message.part.updated", part=text_part("prt_2", sid=other)),
        ev("message.part.updated", part=text_part("prt_3", sid=child))])
    await ingestor.apply([
        delta("a"), delta("b"),
        # Another session's entries come between: its own run, and no break in this one.
        delta("1", other, "prt_2"), delta("2", other, "prt_2"),
        delta("c"),
        # A child's entry belongs to this session's stream too: the run ends before it.
        delta("x", child, "prt_3"), delta("y", child, "prt_3"),
        delta("d"),
        # Any other entry of the session ends a run.
        ev("session.status", sessionID=SID, status={"type": "busy"}),
        delta("e"), delta("f"),
    ])

    async def logged(stream: str) -> list[tuple[str, object]]:
        payloads = [json.loads(e.data) async for e in log.read_entries_after(stream, ZERO)]
        return [(p["type"], p["properties"].get("delta", p["properties"].get("sessionID")))
                for p in payloads
                if p["type"] not in ("session.created", "message.part.updated")]

    assert await logged(log.keys.session_events(SID)) == [
        ("message.part.delta", "abc"), ("message.part.delta", "xy"), ("message.part.delta", "d"),
        ("session.status", SID), ("message.part.delta", "ef")]
    assert (await logged(log.keys.session_events(other)))[-1:] == [
        ("message.part.delta", "12")]
    assert await logged(log.keys.events) == [
        ("message.part.delta", "abc"), ("message.part.delta", "12"),
        ("message.part.delta", "xy"), ("message.part.delta", "d"),
        ("session.status", SID), ("message.part.delta", "ef")]
    # Each entry keeps the first delta's other fields; the stored text is every piece, once.
    assert (await store.get_part(SID, "prt_1"))["text"] == "abcdef"
    assert (await store.get_part(child, "prt_3"))["text"] == "xy"


async def test_parts_changed_beyond_the_cache_size_are_all_written(redis: Redis,
                                                                  keys: Keys) -> None:
    store = StateStore(redis, keys)
    ingestor = Ingestor(redis, None, store, EventLog(redis, keys, 10_000, 10_000),  # type: ignore[arg-type]
                        part_cache_size=2)
    await ingestor.apply(
        [ev("message.part.updated", part=text_part(f"prt_{n}", text=f"{n}")) for n in range(6)]
        + [ev("message.part.delta", sessionID=SID, messageID="msg_a", partID=f"prt_{n}",
              field="text", delta="+") for n in range(6)])
    assert [json.loads(p)["text"] for p in await store.read_parts(SID, "msg_a")] == [
        f"{n}+" for n in range(6)]
    assert len(ingestor._parts) == 2


async def test_routing_a_batch_reads_the_session_tree_once_per_generation(
        redis_server: EmbeddedRedis, keys: Keys) -> None:
    client = CountingRedis.from_url(redis_server.url)
    store = StateStore(client, keys)
    async with Staging(client) as stage:
        for n in range(20):
            store.put_session(stage, session_info(f"ses_root{n}"))
            store.put_session(stage, session_info(f"ses_child{n}", parent=f"ses_root{n}"))
            store.put_session(stage, session_info(f"ses_grand{n}", parent=f"ses_child{n}"))
        await stage.commit()
    log = EventLog(client, keys, 10_000, 10_000)
    ingestor = Ingestor(client, None, store, log)  # type: ignore[arg-type]
    batch = [ev("session.status", sessionID=f"ses_grand{n}", status={"type": "busy"})
             for n in range(20)]
    await ingestor.apply(batch[:1])  # loads the log script into Redis
    CountingRedis.round_trips = 0
    await ingestor.apply(batch[1:])
    # The grandchildren, then their parents, then the roots; then the transaction.
    assert CountingRedis.round_trips <= 4
    logged = [e async for e in log.read_entries_after(keys.events, EventId(0, 0))]
    assert logged[-1].sessions == ("ses_grand19", "ses_child19", "ses_root19")
    await client.aclose()
