"""Unit tests of recording opencode's durable sequence per session and replaying what a stream
missed (ingest/durable.py, and the ingestor's reconcile that uses it), against a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from opencode_relay import events as event_types
from opencode_relay.ingest.durable import (
    Cursor,
    DurableEvent,
    read_cursors,
    replay,
    replayed_already,
)
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import ZERO, EventLog
from opencode_relay.store.state import StateStore
from opencode_relay.upstream.client import UpstreamError, UpstreamUnavailable
from tests.test_unit_core import SID, FakeOpencode, session_info, text_part, transcript

pytestmark = pytest.mark.unit

DIRECTORY = "/tmp/x"


def durable(seq: int, kind: str, data: dict[str, Any], sid: str = SID) -> DurableEvent:
    return DurableEvent(f"evt_{sid}_{seq:04d}", sid, seq, f"{kind}.1", data)


def answer_history(sid: str = SID) -> list[DurableEvent]:
    """opencode's durable history of a session with one answered prompt: seq 0 to 5."""
    info = session_info(sid)
    user = {"id": "msg_a", "sessionID": sid, "role": "user", "time": {"created": 1}}
    reply = {"id": "msg_b", "sessionID": sid, "role": "assistant", "time": {"created": 2}}
    return [
        durable(0, "session.created", {"sessionID": sid, "info": info}, sid),
        durable(1, event_types.MESSAGE_UPDATED, {"sessionID": sid, "info": user}, sid),
        durable(2, event_types.PART_UPDATED,
                {"sessionID": sid, "part": text_part("prt_a", "msg_a", "hello", sid)}, sid),
        durable(3, event_types.MESSAGE_UPDATED, {"sessionID": sid, "info": reply}, sid),
        durable(4, event_types.PART_UPDATED,
                {"sessionID": sid, "part": text_part("prt_b", "msg_b", "", sid)}, sid),
        durable(5, event_types.PART_UPDATED,
                {"sessionID": sid, "part": text_part("prt_b", "msg_b", "the whole answer", sid)},
                sid),
    ]


def live(events: list[DurableEvent]) -> list[dict[str, Any]]:
    """How opencode sends them on /global/event: each event, then its `sync` record."""
    return [item for e in events for item in
            ({"directory": DIRECTORY, "payload": e.live()},
             {"directory": DIRECTORY, "payload": e.record()})]


def test_history_rows_parse_and_keep_the_live_type() -> None:
    row = {"id": "evt_1", "aggregate_id": SID, "seq": 3, "type": "message.part.updated.1",
           "data": {"sessionID": SID}}
    event = DurableEvent.parse(row)
    assert event is not None and event.event_type == "message.part.updated"
    assert event.live() == {"id": "evt_1", "type": "message.part.updated",
                            "properties": {"sessionID": SID}}
    assert event.record()["syncEvent"]["seq"] == 3
    for bad in [None, [], {**row, "seq": "3"}, {**row, "seq": True}, {**row, "data": []},
                {**row, "aggregate_id": "wrk_1"}, {k: v for k, v in row.items() if k != "id"}]:
        assert DurableEvent.parse(bad) is None
    assert DurableEvent("evt_2", SID, 0, "session.next.prompted", {}).event_type == \
        "session.next.prompted"


def test_replay_skips_what_the_cursor_covers_and_records_only_what_went_ahead() -> None:
    history = answer_history()
    # seq 0-2 committed with their records; seq 3 committed, its record not (the batch ended).
    cursor = Cursor(2, history[3].id)
    out = replay(reversed(history), cursor, DIRECTORY)  # opencode's order is by seq
    assert all(item["directory"] == DIRECTORY for item in out)
    assert [(p["payload"]["type"], p["payload"]["id"]) for p in out] == [
        ("sync", history[3].id),
        (event_types.PART_UPDATED, history[4].id), ("sync", history[4].id),
        (event_types.PART_UPDATED, history[5].id), ("sync", history[5].id)]
    assert replay(history, Cursor(5), DIRECTORY) == []
    assert len(replay(history, Cursor(0), DIRECTORY)) == 10


def test_events_read_live_while_replaying_are_dropped_when_replayed() -> None:
    event = answer_history()[4]
    ids = {event.id}
    assert replayed_already({"payload": event.live()}, ids)
    assert replayed_already({"payload": event.record()}, ids)
    assert not replayed_already({"payload": answer_history()[5].live()}, ids)
    delta = {"id": event.id, "type": event_types.PART_DELTA, "properties": {}}
    assert not replayed_already({"payload": delta}, ids)  # only durable events are replayed
    assert not replayed_already("not an event", ids)


async def test_each_batch_records_the_sequence_and_what_went_ahead_of_it(
        redis: Redis, keys: Keys) -> None:
    store = StateStore(redis, keys)
    ingestor = Ingestor(redis, None, store, EventLog(redis, keys, 10_000, 10_000))  # type: ignore[arg-type]
    history = answer_history()
    feed = live(history)
    await ingestor.apply(feed[:7])  # up to seq 3's event, without its record
    assert (await read_cursors(redis, keys, [SID, "ses_never"])) == {
        SID: Cursor(2, history[3].id)}
    await ingestor.apply(feed[7:])
    # The record came: `seq` covers it (the stale `ahead` is at or below it).
    assert (await read_cursors(redis, keys, [SID])) == {SID: Cursor(5, history[3].id)}
    assert await redis.hlen(keys.session_sequence(SID)) == 2  # bounded, whatever the stream
    # A stream without records (not opencode's) leaves one `ahead` field, not one per event.
    for i in range(20):
        await ingestor.apply([{"directory": DIRECTORY, "payload": {
            "id": f"evt_norecord{i}", "type": event_types.PART_UPDATED,
            "properties": {"sessionID": SID, "part": text_part("prt_b", "msg_b", "x")}}}])
    assert await redis.hgetall(keys.session_sequence(SID)) == {b"seq": b"5",
                                                               b"ahead": b"evt_norecord19"}
    # A late record never moves the sequence back.
    await ingestor.apply([{"directory": DIRECTORY, "payload": history[1].record()}])
    assert (await read_cursors(redis, keys, [SID]))[SID].seq == 5
    # A deleted session leaves no record behind, even when its deletion's record comes later.
    gone = durable(6, event_types.SESSION_DELETED, {"sessionID": SID, "info": session_info()})
    await ingestor.apply([{"directory": DIRECTORY, "payload": gone.live()}])
    await ingestor.apply([{"directory": DIRECTORY, "payload": gone.record()}])
    assert await redis.exists(keys.session_sequence(SID)) == 0


class HistoryOpencode(FakeOpencode):
    """Adds opencode's durable history (POST /sync/history) and statuses."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[DurableEvent] = []
        self.busy: set[str] = set()
        self.asked: list[dict[str, int]] = []

    async def statuses(self, directory: str | None = None) -> dict[str, Any]:
        return {sid: {"type": "busy"} for sid in self.busy}

    async def sync_history(self, after: dict[str, int]) -> list[dict[str, Any]]:
        self.asked.append(after)
        return [{"id": e.id, "aggregate_id": e.session, "seq": e.seq, "type": e.type,
                 "data": e.data} for e in self.history if e.seq > after.get(e.session, -1)]


async def session_log(redis: Redis, log: EventLog, keys: Keys,
                      sid: str = SID) -> list[dict[str, Any]]:
    return [json.loads(entry.data)
            async for entry in log.read_entries_after(keys.session_events(sid), ZERO)]


async def test_reconcile_replays_what_the_stream_missed_once_then_says_the_status(
        redis: Redis, keys: Keys) -> None:
    fake = HistoryOpencode()
    store = StateStore(redis, keys)
    log = EventLog(redis, keys, 10_000, 10_000)
    ingestor = Ingestor(redis, fake, store, log)  # type: ignore[arg-type]
    history = answer_history()
    # The answer was under way when the ingester went: seq 0-3 and the busy status committed.
    await ingestor.apply(live(history[:4]) + [{"directory": DIRECTORY, "payload": {
        "type": event_types.SESSION_STATUS_CHANGED,
        "properties": {"sessionID": SID, "status": {"type": "busy"}}}}])
    # opencode went on and finished meanwhile; another session never had a sequence recorded.
    fake.history = history
    fake.sessions[SID] = {**session_info(), "time": {"created": 1000, "updated": 3000}}
    fake.transcripts[SID] = [
        {"info": history[1].data["info"], "parts": [history[2].data["part"]]},
        {"info": history[3].data["info"], "parts": [history[5].data["part"]]}]
    fake.add("ses_other", 2000, "never streamed here")

    reconciled = await ingestor.reconcile()

    assert reconciled.replayed == {history[4].id, history[5].id}
    assert ingestor.replayed == 2
    # Asked once, naming every session: the replayed one after its sequence, the rest past
    # their end (opencode sends the whole history of a session not named).
    assert fake.asked == [{SID: 3, "ses_other": 2**53 - 1}]
    logged = await session_log(redis, log, keys)
    durable_ids = [p["id"] for p in logged if p["type"] in event_types.DURABLE]
    assert durable_ids == [e.id for e in history]  # each once, in opencode's order
    tail = [p["type"] for p in logged][-5:]
    assert tail == [event_types.PART_UPDATED, event_types.PART_UPDATED,
                    event_types.RELAY_SESSION_SYNCED, event_types.SESSION_STATUS_CHANGED,
                    event_types.SESSION_IDLE]
    assert (await read_cursors(redis, keys, [SID])) == {SID: Cursor(5)}
    assert json.loads((await transcript(store))[1].parts[0])["text"] == "the whole answer"
    assert json.loads(await redis.get(keys.status(SID))) == {"type": "idle"}
    assert "ses_other" not in await read_cursors(redis, keys, ["ses_other"])

    # Nothing moved since: a second reconcile replays nothing and says nothing again.
    before = len(await session_log(redis, log, keys))
    assert (await ingestor.reconcile()).replayed == set()
    assert len(await session_log(redis, log, keys)) == before

    # A session that does not look changed (same time, idle) but missed durable events gets
    # them: opencode, not a guess, says which sessions moved. It needs no snapshot.
    quiet = answer_history("ses_quiet")
    fake.sessions["ses_quiet"] = quiet[0].data["info"]
    fake.transcripts["ses_quiet"] = []
    await ingestor.apply(live(quiet[:2]))
    fake.history += quiet
    fake.asked.clear()
    assert (await ingestor.reconcile()).replayed == {e.id for e in quiet[2:]}
    assert fake.asked[0]["ses_quiet"] == 1 and fake.asked[0][SID] == 5
    quiet_log = await session_log(redis, log, keys, "ses_quiet")
    assert [p["id"] for p in quiet_log if p["type"] in event_types.DURABLE] == \
        [e.id for e in quiet]
    assert event_types.RELAY_SESSION_SYNCED not in [p["type"] for p in quiet_log]
    assert json.loads((await transcript(store, "ses_quiet"))[1].parts[0])["text"] == \
        "the whole answer"


async def test_reconcile_without_opencode_history_falls_back_to_snapshots(
        redis: Redis, keys: Keys) -> None:
    fake = FakeOpencode()  # no sync_history at all: as an opencode without the route
    store = StateStore(redis, keys)
    log = EventLog(redis, keys, 10_000, 10_000)
    ingestor = Ingestor(redis, fake, store, log)  # type: ignore[arg-type]
    history = answer_history()
    await ingestor.apply(live(history[:2]))

    async def missing(after: dict[str, int]) -> list[dict[str, Any]]:
        raise UpstreamError(404, "no route POST /sync/history")

    fake.sync_history = missing  # type: ignore[attr-defined]
    fake.add(SID, 5000, "read from the snapshot")
    assert (await ingestor.reconcile()).replayed == set()
    assert json.loads((await transcript(store))[0].parts[0])["text"] == "read from the snapshot"


async def test_live_events_read_while_replaying_are_not_logged_twice(
        redis: Redis, keys: Keys) -> None:
    """The live stream is open (and queued) before the history is read: an event in both is
    logged once, from the replay; later ones follow live."""
    fake = HistoryOpencode()
    store = StateStore(redis, keys)
    log = EventLog(redis, keys, 10_000, 10_000)
    ingestor = Ingestor(redis, fake, store, log)  # type: ignore[arg-type]
    history = answer_history()
    await ingestor.apply(live(history[:3]))
    fake.sessions[SID] = {**session_info(), "time": {"created": 1000, "updated": 3000}}
    fake.transcripts[SID] = [
        {"info": history[1].data["info"], "parts": [history[2].data["part"]]},
        {"info": history[3].data["info"], "parts": [history[4].data["part"]]}]
    fake.history = history[:5]  # what opencode had committed when the history was read
    queued = asyncio.Event()
    read_history = fake.sync_history

    async def sync_history_after_the_stream_queued(after: dict[str, int]) -> list[Any]:
        await queued.wait()
        return await read_history(after)

    fake.sync_history = sync_history_after_the_stream_queued  # type: ignore[method-assign]

    async def stream() -> AsyncIterator[dict[str, Any]]:
        for item in live(history[4:]):  # seq 4 is in the history too; seq 5 is new
            yield item
        queued.set()

    with pytest.raises(UpstreamUnavailable):  # the stream ends after its events
        await ingestor._consume(stream())
    logged = await session_log(redis, log, keys)
    assert [p["id"] for p in logged if p["type"] in event_types.DURABLE] == \
        [e.id for e in history]
    assert (await read_cursors(redis, keys, [SID])) == {SID: Cursor(5)}
    every = [json.loads(entry.data)
             async for entry in log.read_entries_after(keys.events, ZERO)]
    records = [p["syncEvent"]["seq"] for p in every if p["type"] == event_types.SYNC]
    assert records == [0, 1, 2, 3, 4, 5]
