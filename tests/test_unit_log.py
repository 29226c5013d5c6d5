"""The log's commit protocol (store/log.py) with one transaction per slot, as on a cluster
(`split=True` on one Redis takes the same steps): per-session logs first, the global log by the
publish step; a crash between the two repaired, a late or concurrent writer healed, sub-agent
copies shown to global readers once, and a session stream that proves it missed nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from opencode_relay.fanout.hub import Hub
from opencode_relay.fanout.stream import event_stream
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import (
    ZERO,
    EntryReader,
    EventId,
    EventLog,
    LogEntry,
    Logged,
    Ref,
    parse_entry,
)
from opencode_relay.store.staging import Staging
from tests.support.redis_under_test import CLUSTER

pytestmark = pytest.mark.unit

PARENT, CHILD, OTHER = "ses_logparent", "ses_logchild", "ses_logother"


def entry(n: int, *sessions: str) -> LogEntry:
    return LogEntry(None, json.dumps({"n": n}).encode(), sessions)


async def committed_unpublished(log: EventLog, owner: str, entries: list[LogEntry]) -> None:
    """A writer that died between its commit and its publish."""
    async with Staging(log.redis, split=True) as stage:
        await log.stage_append(stage, entries)
        await log.redis.sadd(log.keys.unpublished(owner),
                             *{s for e in entries for s in e.sessions})
        await stage.commit()


async def global_entries(log: EventLog) -> list[LogEntry]:
    return [e async for e in log.read_entries_after(log.keys.events, ZERO)]


async def session_entries(log: EventLog, sid: str) -> list[LogEntry]:
    return [e async for e in log.read_entries_after(log.keys.session_events(sid), ZERO)]


def numbers(found: list[LogEntry]) -> list[int]:
    return [json.loads(e.data)["n"] for e in found]


async def test_a_commit_publishes_each_event_once_with_its_place_in_each_log(
        redis: Redis, keys: Keys) -> None:
    log = EventLog(redis, keys, 1000, 1000)
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(1, PARENT), entry(2, CHILD, PARENT), entry(3, OTHER),
                                 entry(4)], "default")
    found = await global_entries(log)
    assert numbers(found) == [1, 2, 3, 4]
    parent_log = await session_entries(log, PARENT)
    child_log = await session_entries(log, CHILD)
    assert numbers(parent_log) == [1, 2] and numbers(child_log) == [2]
    # The sub-agent's event names its place in its own log and in its parent's.
    assert found[1].refs == (Ref(CHILD, ZERO, child_log[0].id),  # type: ignore[arg-type]
                             Ref(PARENT, parent_log[0].id, parent_log[1].id))  # type: ignore[arg-type]
    assert found[3].refs == () and found[3].sessions == ()  # of no session: global only
    assert await redis.hget(keys.published, PARENT) == str(parent_log[1].id).encode()


@pytest.mark.parametrize("split", [True, pytest.param(False, marks=pytest.mark.skipif(
    CLUSTER, reason="the one-Redis path: a cluster refuses its script's keys (several slots)"))])
async def test_what_a_commit_hands_over_and_what_a_reader_parses_are_what_the_log_holds(
        redis: Redis, keys: Keys, split: bool) -> None:
    """The entries made from the log scripts' replies (a commit's hand-over to the hub) and
    those an `EntryReader` makes from a read (a replica's hub) equal `parse_entry`'s of the same
    entries, ids and references included, on both write paths (one Redis, and the cluster's
    two steps)."""
    log = EventLog(redis, keys, 1000, 1000)
    handed: list[LogEntry] = []

    class Watcher:
        def committing(self) -> None: ...

        async def committed(self, logged: list[Logged]) -> None:
            handed.extend(e for added in logged for e in added.entries())

    log.watcher = Watcher()
    for batch in ([entry(1, PARENT), entry(2, CHILD, PARENT), entry(3, OTHER), entry(4)],
                  [entry(5, CHILD, PARENT), entry(6, PARENT), entry(7, CHILD, PARENT)]):
        async with Staging(redis, split=split) as stage:
            await log.commit(stage, batch, "default")
    read = [(raw_id, fields) for raw_id, fields in
            await redis.xrange(keys.events)]  # type: ignore[misc]
    expected = [parse_entry(raw_id, fields) for raw_id, fields in read]
    assert numbers(expected) == [1, 2, 3, 4, 5, 6, 7]
    reader = EntryReader()
    assert [reader(raw_id, fields) for raw_id, fields in read] == expected
    assert handed == expected
    # A reference whose `prev` is not the entry read before it there (a read that skipped
    # some, a log trimmed meanwhile) keeps its own.
    def fields(ref: str) -> dict[bytes, bytes]:
        return {b"e": b"{}", b"s": PARENT.encode(), b"r": f"{PARENT},{ref}".encode()}

    skipped = EntryReader()
    first, later = skipped(b"5-0", fields("1-0,2-0")), skipped(b"9-0", fields("7-0,8-0"))
    assert first.refs == (Ref(PARENT, EventId(1, 0), EventId(2, 0)),)
    assert later.refs == (Ref(PARENT, EventId(7, 0), EventId(8, 0)),)


async def test_a_crash_between_commit_and_publish_is_repaired_once(redis: Redis,
                                                                   keys: Keys) -> None:
    log = EventLog(redis, keys, 1000, 1000)
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(1, PARENT)], "default")
    await committed_unpublished(log, "default", [entry(2, PARENT), entry(3, CHILD, PARENT)])
    assert numbers(await global_entries(log)) == [1]  # committed, not published
    assert await log.repair("default") == 2
    found = await global_entries(log)
    # Each event once for global readers; the parent's copy of the sub-agent's event is in
    # the global log for the parent's session readers only.
    assert sorted(numbers(found)) == [1, 2, 3]
    hidden = [e async for e in _all(log) if e.hidden]
    assert [(numbers([e]), e.refs[0].session) for e in hidden] == [([3], PARENT)]
    assert await log.repair("default") == 0  # forgotten once repaired
    # Publishing what is published already adds nothing (a writer that was only late).
    async with Staging(redis, split=True) as stage:
        appended = await log.stage_append(stage, [entry(4, PARENT)])
        await stage.commit()
    await log.publish(appended)
    await log.publish(appended)
    assert sorted(numbers(await global_entries(log))) == [1, 2, 3, 4]


async def _all(log: EventLog) -> AsyncIterator[LogEntry]:
    """Every global entry, hidden copies too."""
    for raw_id, fields in await log.redis.xrange(log.keys.events):
        yield parse_entry(raw_id, fields)


async def test_a_writer_that_finds_an_unpublished_entry_before_its_own_publishes_it_first(
        redis: Redis, keys: Keys) -> None:
    log = EventLog(redis, keys, 1000, 1000)
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(1, OTHER)], "default")
    # Another writer committed 2 and has not published it (yet, or ever).
    async with Staging(redis, split=True) as slow_stage:
        slow = await log.stage_append(slow_stage, [entry(2, OTHER)])
        await slow_stage.commit()
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(3, OTHER)], "default")
    assert numbers(await global_entries(log)) == [1, 2, 3]  # in the session's order
    await log.publish(slow)  # the slow writer arrives: nothing twice
    assert numbers(await global_entries(log)) == [1, 2, 3]
    refs = [e.refs[0] for e in await global_entries(log)]
    assert [r.prev for r in refs[1:]] == [r.id for r in refs[:-1]]  # a chain, no gap


async def test_a_new_sessions_first_entry_is_published_when_a_later_writer_publishes_first(
        redis: Redis, keys: Keys) -> None:
    """A session's log with nothing published yet has no pointer: its first entry, committed
    by a writer still on its way (the route's relay.session.created), must not be skipped by a
    writer that committed after it and publishes first (the ingester's session.created)."""
    log = EventLog(redis, keys, 1000, 1000)
    async with Staging(redis, split=True) as slow_stage:
        slow = await log.stage_append(slow_stage, [entry(1, OTHER)])
        await slow_stage.commit()
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(2, OTHER)], "default")
    assert numbers(await global_entries(log)) == [1, 2]
    await log.publish(slow)  # the slow writer arrives: nothing twice
    found = await global_entries(log)
    assert numbers(found) == [1, 2]
    assert [e.refs[0].prev for e in found] == [ZERO, found[0].refs[0].id]


async def test_a_session_stream_fills_in_entries_the_live_feed_skipped(redis: Redis,
                                                                       keys: Keys) -> None:
    log = EventLog(redis, keys, 1000, 1000)
    async with Staging(redis, split=True) as stage:
        await log.commit(stage, [entry(n, OTHER) for n in range(3)], "default")
    logged = await session_entries(log, OTHER)
    hub = Hub(redis, keys, log)
    stream = event_stream(hub, log, keys.session_events(OTHER), OTHER, logged[0].id,
                          heartbeat_seconds=5)
    assert (await stream.__anext__()).startswith(b"retry:")
    replayed = [await stream.__anext__() for _ in range(2)]
    assert [json.loads(f.split(b"data: ")[1])["n"] for f in replayed] == [1, 2]
    async with Staging(redis, split=True) as stage:  # 3 and 4 logged; the hub hears of 4 only
        appended = await log.stage_append(stage, [entry(3, OTHER), entry(4, OTHER)])
        await stage.commit()
    four = appended.refs[1][0]
    hub.dispatch(EventId(9, 9), b'{"n": 4}', [OTHER], [four])
    frames = await asyncio.wait_for(stream.__anext__(), 1)
    assert [json.loads(line[6:])["n"] for line in frames.split(b"\n")
            if line.startswith(b"data: ")] == [3, 4]
    assert f"id: {four.id}".encode() in frames
    await stream.aclose()
