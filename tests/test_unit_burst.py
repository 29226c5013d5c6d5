"""A burst through the whole ingest path: opencode (a loopback server speaking its event stream,
one HTTP chunk per event, as opencode writes them) -> the socket reader -> the ingestor's
batches -> Redis -> the hub -> a client's SSE stream. Every event arrives once, in order, and the
burst is written in few transactions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from opencode_relay.fanout.hub import Hub
from opencode_relay.fanout.stream import event_stream
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog
from opencode_relay.store.state import StateStore
from opencode_relay.upstream.client import OpencodeClient
from tests.test_unit_core import SID, ev, session_info, text_part
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
        received: list[str] = []

        async def read_to_idle() -> None:
            async for data in stream:
                for block in data.split(b"\n\n"):
                    if b"data: " in block:
                        payload = json.loads(block.split(b"data: ", 1)[1])
                        received.append(payload["id"])
                        if payload["type"] == "session.idle":
                            return

        await asyncio.wait_for(read_to_idle(), 60)
        await stream.aclose()
        after = (await redis.info("commandstats"))["cmdstat_exec"]["calls"]
        part = await ingestor.store.get_part(SID, "prt_1")
        logged = [json.loads(fields[b"e"])["id"]
                  for _id, fields in await redis.xrange(keys.session_events(SID))]
    # The client got every event after it subscribed, once and in opencode's order.
    expected = [e["payload"]["id"] for e in burst + closing]
    assert received[-len(expected):] == expected
    assert len(received) == len(set(received))
    assert part is not None and part["text"] == "".join(f"t{i:04d} " for i in range(deltas))
    assert logged == [e["payload"]["id"] for e in sent]
    # Read a socket read at a time, not an event at a time: far fewer commits than events.
    assert after - before < deltas / 10
