"""A burst through the whole ingest path: opencode (a loopback server speaking its event stream,
one HTTP chunk per event, as opencode writes them) -> the socket reader -> the ingestor's
batches -> Redis -> the hub -> a client's SSE stream. Every event arrives once, in order (a run of
deltas as one), and the burst is written in few transactions and log entries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from opencode_relay.fanout.hub import Hub
from opencode_relay.fanout.stream import event_stream
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog, LogEntry
from opencode_relay.store.replies import text
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from opencode_relay.upstream.client import OpencodeClient, UpstreamUnavailable
from tests.test_unit_core import SID, CountingRedis, FakeOpencode, ev, session_info, text_part
from tests.test_unit_event_stream import HEAD, chunk

pytestmark = pytest.mark.unit

REST = {"/experimental/session": [], "/session/status": {}, "/permission": [], "/question": []}


class Opencode:
    """Answers the relay's reconcile with "no sessions"; streams what the test sends."""

    def __init__(self) -> None:
        self.streams: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                path = head.split(" ", 2)[1].split("?")[0]
                if path == "/global/event":
                    writer.write(HEAD)
                    self.streams.append(writer)
                    self.connected.set()
                    await reader.read()
                    return
                body = json.dumps(REST.get(path, [])).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def send(self, events: list[dict]) -> None:
        """Every event its own chunk, written at once (a burst)."""
        writer = self.streams[-1]
        writer.write(b"".join(chunk(b"data: " + json.dumps(e).encode() + b"\n\n")
                              for e in events))
        await writer.drain()


@asynccontextmanager
async def relay_parts(tmp_path: Path) -> AsyncIterator[tuple[Opencode, Ingestor, Hub, Redis]]:
    opencode = Opencode()
    server = await asyncio.start_server(opencode.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(redis_server.url)
    keys = Keys("burst:")
    log = EventLog(redis, keys, 200_000, 50_000)
    upstream = OpencodeClient(url)
    ingestor = Ingestor(redis, upstream, StateStore(redis, keys), log)
    hub = Hub(redis, keys, log)
    await hub.start()
    running = asyncio.create_task(ingestor.run())
    try:
        await asyncio.wait_for(ingestor.synced.wait(), 30)
        yield opencode, ingestor, hub, redis
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await hub.stop()
        await upstream.aclose()
        await redis.aclose()
        server.close()
        redis_server.stop()


async def test_a_burst_arrives_whole_in_order_in_few_transactions(tmp_path: Path) -> None:
    deltas = 3000
    message = {"id": "msg_a", "sessionID": SID, "role": "assistant", "time": {"created": 1}}
    opening = [ev("session.created", sessionID=SID, info=session_info()),
               ev("message.updated", sessionID=SID, info=message),
               ev("message.part.updated", sessionID=SID, part=text_part("prt_1", text=""))]
    burst = [ev("message.part.delta", sessionID=SID, messageID="msg_a", partID="prt_1",
                field="text", delta=f"t{i:04d} ") for i in range(deltas)]
    closing = [ev("session.idle", sessionID=SID)]
    sent = opening + burst + closing
    async with relay_parts(tmp_path) as (opencode, ingestor, hub, redis):
        keys = ingestor.store.keys
        await opencode.send(opening)
        stream = event_stream(hub, ingestor.log, keys.session_events(SID), SID, None, 30)
        assert b"retry:" in await anext(stream)
        assert b"connected" in await anext(stream)
        before = (await redis.info("commandstats")).get("cmdstat_exec", {}).get("calls", 0)
        await opencode.send(burst)
        await opencode.send(closing)
        received: list[dict] = []

        async def read_to_idle() -> None:
            async for data in stream:
                for block in data.split(b"\n\n"):
                    if b"data: " in block:
                        payload = json.loads(block.split(b"data: ", 1)[1])
                        received.append(payload)
                        if payload["type"] == "session.idle":
                            return

        await asyncio.wait_for(read_to_idle(), 60)
        await stream.aclose()
        after = (await redis.info("commandstats"))["cmdstat_exec"]["calls"]
        part = await ingestor.store.get_part(SID, "prt_1")
        logged = [json.loads(fields[b"e"])
                  for _id, fields in await redis.xrange(keys.session_events(SID))]
    text = "".join(f"t{i:04d} " for i in range(deltas))
    assert part is not None and part["text"] == text
    # The client got every event after it subscribed, once and in opencode's order: each entry
    # is an event of the burst (a run of deltas carries its first one's id and every piece).
    order = {e["payload"]["id"]: n for n, e in enumerate(sent)}
    places = [order[p["id"]] for p in received]
    assert places == sorted(set(places)) and received[-1]["type"] == "session.idle"
    assert "".join(p["properties"]["delta"] for p in received
                   if p["type"] == "message.part.delta") == text
    assert [p["id"] for p in logged][-len(received):] == [p["id"] for p in received]
    assert order[received[0]["id"]] <= len(opening)  # nothing missed from the burst's start
    # Read a socket read at a time, not an event at a time, and batched by log entries, not by
    # events: far fewer commits than batches of `batch_size` deltas, and far fewer log entries
    # (and frames) than deltas.
    assert after - before < deltas / ingestor.batch_size  # a run is one entry of a batch
    assert len(received) < deltas / 10


def ids_in(data: bytes) -> list[str]:
    return [line[4:].decode() for line in data.split(b"\n") if line.startswith(b"id: ")]


async def test_reads_fan_out_once_in_order_and_a_slow_client_is_dropped_then_resumes(
        tmp_path: Path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(redis_server.url)
    keys = Keys("fan:")
    log = EventLog(redis, keys, 200_000, 50_000)
    hub = Hub(redis, keys, log, queue_size=100)
    await hub.start()
    child, other = "ses_child", "ses_other"

    async def write(count: int, tag: str) -> dict[str, list[str]]:
        """`count` events in one commit (one read of the global log), alternately of the child
        session (routed to it and its parent SID) and of another session; the ids each stream
        gives them (a session's stream: its own log's ids)."""
        entries = [LogEntry(None, json.dumps({"n": f"{tag}{i}"}).encode(),
                            (child, SID) if i % 2 == 0 else (other,)) for i in range(count)]
        async with Staging(redis) as stage:
            await log.commit(stage, entries, "default")

        async def last(key: str, n: int) -> list[str]:
            return [text(i) for i, _f in (await redis.xrevrange(key, count=n))[::-1]]

        return {"all": await last(keys.events, count),
                "parent": await last(keys.session_events(SID), count // 2),
                "child": await last(keys.session_events(child), count // 2)}

    streams = {name: event_stream(hub, log, key, sid, None, 30) for name, key, sid in [
        ("all", keys.events, None), ("parent", keys.session_events(SID), SID),
        ("child", keys.session_events(child), child), ("slow", keys.events, None)]}
    try:
        for stream in streams.values():
            assert b"retry:" in await anext(stream)
            assert b"connected" in await anext(stream)
        start = await log.last_id()
        got: dict[str, list[str]] = {name: [] for name in streams if name != "slow"}
        written: dict[str, list[str]] = {name: [] for name in got}
        for round_ in range(3):
            ids = await write(60, f"r{round_}-")
            for name in got:
                written[name] += ids[name]
                while len(got[name]) < len(written[name]):
                    got[name] += ids_in(await asyncio.wait_for(anext(streams[name]), 10))
                assert got[name][-len(ids[name]):] == ids[name], (name, round_)
        assert got == written and len(written["parent"]) == len(written["all"]) // 2
        # The client that never read holds no more than its bound, and its stream ends at
        # once when it looks, so it reconnects with the last id it has: nothing is lost.
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(streams["slow"]), 5)
        resumed = event_stream(hub, log, keys.events, None, start, 30)
        again: list[str] = []
        while len(again) < len(written["all"]):
            again += ids_in(await asyncio.wait_for(anext(resumed), 10))
        assert again == written["all"]
        await resumed.aclose()
    finally:
        for stream in streams.values():
            await stream.aclose()
        await hub.stop()
        await redis.aclose()
        redis_server.stop()


async def test_deltas_received_before_a_snapshot_are_not_applied_twice_even_when_the_inbox_is_full(
        redis: Redis, keys: Keys) -> None:
    sid, mid, pid = "ses_a", "msg_ses_a", "prt_ses_a"
    fake = FakeOpencode()
    fake.add(sid, 2000, "first x1 x2")  # opencode's state: both early deltas in it
    ingestor = Ingestor(redis, fake, StateStore(redis, keys),  # type: ignore[arg-type]
                        EventLog(redis, keys, 10_000, 10_000), backlog_limit=1)  # one read
    both_read = asyncio.Event()

    def delta(text_: str) -> dict:
        return ev("message.part.delta", sessionID=sid, messageID=mid, partID=pid, field="text",
                  delta=text_)

    async def stream() -> AsyncIterator[list[dict]]:
        yield [delta(" x1")]  # queued
        both_read.set()
        yield [delta(" x2")]  # received (counted), waits for room in the inbox
        await ingestor.synced.wait()
        yield [delta(" late")]  # after the snapshot: applied

    fetch = fake.messages

    async def messages_after_both(sid_: str, directory: str | None = None) -> list[dict]:
        await both_read.wait()
        await asyncio.sleep(0.05)  # the reader is now waiting to queue the second read
        return await fetch(sid_, directory)

    fake.messages = messages_after_both  # type: ignore[method-assign]
    with pytest.raises(UpstreamUnavailable, match="closed"):
        await asyncio.wait_for(ingestor._consume(stream()), 30)
    part = await ingestor.store.get_part(sid, pid)
    assert part is not None and part["text"] == "first x1 x2 late"


async def test_own_commits_reach_clients_without_a_read_back_and_others_are_read(
        tmp_path: Path) -> None:
    """What this process commits the hub hands out as the log reported it (EventLog.watcher);
    what another process (a replica's ingester) commits meanwhile it reads from Redis. Either
    way every stream gets every entry once, in the log's order, under the log's ids."""
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(redis_server.url)
    keys = Keys("own:")
    ours, theirs = EventLog(redis, keys, 200_000, 50_000), EventLog(redis, keys, 200_000, 50_000)
    hub_redis = Redis.from_url(redis_server.url)
    read_back = 0
    xread = hub_redis.xread

    async def counted_xread(*args: object, **kwargs: object) -> object:
        nonlocal read_back
        found = await xread(*args, **kwargs)  # type: ignore[arg-type]
        read_back += sum(len(entries) for _stream, entries in found or [])
        return found

    hub_redis.xread = counted_xread  # type: ignore[method-assign]
    hub = Hub(hub_redis, keys, ours)
    ours.watcher = hub
    await hub.start()
    other = "ses_other"

    async def commit(log: EventLog, count: int, tag: str) -> None:
        entries = [LogEntry(None, json.dumps({"n": f"{tag}{i}"}).encode(),
                            (SID,) if i % 2 == 0 else (other,)) for i in range(count)]
        async with Staging(redis) as stage:
            await log.commit(stage, entries, "default")

    streams = {name: event_stream(hub, ours, key, sid, None, 30) for name, key, sid in [
        ("all", keys.events, None), ("session", keys.session_events(SID), SID)]}
    try:
        for stream in streams.values():
            assert b"retry:" in await anext(stream)
            assert b"connected" in await anext(stream)
        # This process ingests: it has committed lately (until then its hub reads whole
        # batches, as a standby replica's does, and may read this one back).
        await commit(ours, 1, "w")
        await asyncio.sleep(0.05)
        read_back = 0
        plan = [(ours, 100, "a"), (theirs, 40, "b"), (ours, 100, "c"), (ours, 100, "d"),
                (theirs, 40, "e"), (ours, 100, "f")]
        for log, count, tag in plan:
            await commit(log, count, tag)
            await asyncio.sleep(0.05)  # the hub is done with it (read or handed out)
        # Read back from Redis: the other process's 80 entries, and at most the one entry a
        # blocked read asks for per commit of ours; never our batches themselves.
        assert read_back <= 80 + len(plan), read_back
        # Both at once: whichever lands first, the other follows it in the log (ours is read
        # back if theirs came first: the hub hands out only what follows what it has).
        await asyncio.gather(commit(ours, 100, "g"), commit(theirs, 40, "h"))
        expected = {"all": [text(i) for i, _f in await redis.xrange(keys.events)],
                    "session": [text(i) for i, _f in
                                await redis.xrange(keys.session_events(SID))]}
        got: dict[str, list[str]] = {name: [] for name in streams}
        for name, stream in streams.items():
            while len(got[name]) < len(expected[name]):
                got[name] += ids_in(await asyncio.wait_for(anext(stream), 10))
        assert got == expected
        assert len(expected["all"]) == 621 and len(expected["session"]) == 311
    finally:
        for stream in streams.values():
            await stream.aclose()
        await hub.stop()
        await hub_redis.aclose()
        await redis.aclose()
        redis_server.stop()


async def test_a_hub_that_does_not_commit_reads_a_batch_of_the_log_in_one_round_trip(
        tmp_path: Path) -> None:
    """A standby replica's hub: its blocked read takes what another process committed at once,
    instead of asking for one entry, then for the rest."""
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(redis_server.url)
    hub_redis = CountingRedis.from_url(redis_server.url)
    keys = Keys("standby:")
    hub = Hub(hub_redis, keys, EventLog(hub_redis, keys, 200_000, 50_000))
    await hub.start()
    theirs = EventLog(redis, keys, 200_000, 50_000)
    stream = event_stream(hub, hub.log, keys.events, None, None, 30)
    try:
        assert b"retry:" in await anext(stream)
        assert b"connected" in await anext(stream)
        await asyncio.sleep(0.05)  # the hub's read is blocked on the log
        for round_ in range(3):
            CountingRedis.round_trips = 0
            entries = [LogEntry(None, json.dumps({"n": i}).encode(), (SID,)) for i in range(300)]
            async with Staging(redis) as stage:
                await theirs.commit(stage, entries, "default")
            got: list[str] = []
            while len(got) < 300:
                got += ids_in(await asyncio.wait_for(anext(stream), 10))
            assert got == [text(i) for i, _f in await redis.xrevrange(keys.events, count=300)][::-1]
            # Since the blocked read that brought them: only the next one, no catching up.
            assert CountingRedis.round_trips == 1, round_
    finally:
        await stream.aclose()
        await hub.stop()
        await hub_redis.aclose()
        await redis.aclose()
        redis_server.stop()


async def test_a_batch_staged_while_the_last_commits_reads_what_that_one_wrote(
        redis: Redis, keys: Keys) -> None:
    """The next batch is staged while Redis commits the last; a delta for a part the batch in
    flight removes must not read the part back from Redis before that removal is in (it would
    bring the part back)."""
    sid, mid, pid = "ses_a", "msg_ses_a", "prt_ses_a"
    fake = FakeOpencode()
    fake.add(sid, 2000, "first")
    ingestor = Ingestor(redis, fake, StateStore(redis, keys),  # type: ignore[arg-type]
                        EventLog(redis, keys, 10_000, 10_000))
    commit = ingestor.log.commit
    in_flight = asyncio.Event()

    async def slow_commit(*args: Any, **kwargs: Any) -> None:
        in_flight.set()
        await asyncio.sleep(0.3)  # Redis is slow: the next read is staged meanwhile
        await commit(*args, **kwargs)

    async def stream() -> AsyncIterator[list[dict]]:
        await ingestor.synced.wait()
        ingestor.log.commit = slow_commit  # type: ignore[method-assign]
        yield [ev("message.part.removed", sessionID=sid, messageID=mid, partID=pid)]
        await in_flight.wait()
        yield [ev("message.part.delta", sessionID=sid, messageID=mid, partID=pid, field="text",
                  delta=" again")]
        await asyncio.sleep(0.6)  # both batches committed before the stream ends

    with pytest.raises(UpstreamUnavailable, match="closed"):
        await asyncio.wait_for(ingestor._consume(stream()), 30)
    assert await ingestor.store.get_part(sid, pid) is None
    assert pid.encode() not in await redis.zrange(keys.message_parts(sid, mid), 0, -1)


async def test_a_fan_out_bug_neither_fails_the_commit_nor_stops_the_reader(
        tmp_path: Path) -> None:
    """A filter that fails once (a bug) while a commit is handed over: the commit still
    succeeds, the reader reads those entries instead, and every stream gets them."""
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(redis_server.url)
    keys = Keys("bug:")
    log = EventLog(redis, keys, 200_000, 50_000)
    hub = Hub(Redis.from_url(redis_server.url), keys, log)
    log.watcher = hub
    await hub.start()

    class FailsOnce:
        failed = False

        async def prepare(self, sessions: object) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("a bug")

        def __call__(self, sessions: object) -> bool:
            return True

    streams = [event_stream(hub, log, keys.events, None, None, 30, accept=FailsOnce()),
               event_stream(hub, log, keys.events, None, None, 30)]
    try:
        for stream in streams:
            assert b"retry:" in await anext(stream)
            assert b"connected" in await anext(stream)
        async with Staging(redis) as stage:
            await log.commit(stage, [LogEntry(None, b'{"n":%d}' % i, (SID,)) for i in range(5)],
                             "default")
        written = [text(i) for i, _f in await redis.xrange(keys.events)]
        for stream in streams:
            got: list[str] = []
            while len(got) < len(written):
                got += ids_in(await asyncio.wait_for(anext(stream), 10))
            assert got == written
    finally:
        for stream in streams:
            await stream.aclose()
        await hub.stop()
        await hub.redis.aclose()
        await redis.aclose()
        redis_server.stop()
