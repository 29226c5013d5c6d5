"""One client's SSE stream: replay from the Redis log after Last-Event-ID, then live events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from ..store.log import EventId, EventLog
from .hub import CLOSE, EventFilter, Hub, sse_frame

RETRY_MS = 2000


def _relay_json(kind: str, **properties: object) -> bytes:
    return json.dumps({"type": kind, "properties": properties}).encode()


def _relay_event(kind: str, **properties: object) -> bytes:
    return b"data: " + _relay_json(kind, **properties) + b"\n\n"


async def event_stream(hub: Hub, log: EventLog, stream_key: str, session_id: str | None,
                       after: EventId | None, heartbeat_seconds: float,
                       accept: EventFilter | None = None) -> AsyncIterator[bytes]:
    # Subscribe before replaying: whatever is logged meanwhile arrives on the queue, and ids
    # already sent are skipped, so the hand-over from replay to live has no gap and no double.
    sub = hub.subscribe(session_id, accept)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        last = after
        if after is not None:
            replay_after = after
            if await log.has_gap_after(stream_key, after):
                # Some of what was missed is no longer in the log: say so under the newest id,
                # then go on from there (the client refetches state meanwhile).
                replay_after = await log.last_id(stream_key)
                yield sse_frame(replay_after, _relay_json(
                    "relay.reset", reason="events after the requested id were trimmed from "
                    "the log; refetch state, then continue from this event's id"))
            last = replay_after
            async for entry in log.read_entries_after(stream_key, replay_after):
                assert entry.id is not None  # entries read back from the log carry their id
                if accept is not None:
                    await accept.prepare(entry.sessions)
                if accept is None or accept(entry.sessions):
                    yield sse_frame(entry.id, entry.data)
                last = entry.id
        else:
            yield b": connected\n\n"
        while True:
            if sub.overflowed.is_set():
                return  # too slow: the client reconnects with its last id
            if sub.queue.empty():
                try:
                    first = await asyncio.wait_for(sub.queue.get(), heartbeat_seconds)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                pending = [first]
            else:
                pending = []
            # Everything already queued goes out as one write.
            while not sub.queue.empty():
                pending.append(sub.queue.get_nowait())
            frames = []
            for event in pending:
                if event is CLOSE:
                    frames.append(_relay_event("relay.shutdown",
                                               reason="relay is restarting; reconnect"))
                    yield b"".join(frames)
                    return
                if last is None or event.id > last:
                    last = event.id
                    frames.append(event.frame)
            if frames:
                yield b"".join(frames)
    finally:
        hub.unsubscribe(sub)
