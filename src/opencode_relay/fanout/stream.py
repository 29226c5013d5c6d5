"""One client's SSE stream: replay from the Redis log after Last-Event-ID, then live events.

On a session's stream every live event says which entry of the session's log precedes it; one
that follows an entry this stream has not sent (the global log lagged the session's log, or
the hub skipped entries) is preceded by those entries, read from the session's log. So the
stream proves it sent every entry of the session's log in order, each once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..events import RELAY_RESET, RELAY_SHUTDOWN
from ..store.log import EventId, EventLog
from .hub import EventFilter, Hub, LiveEvent
from .sse import frame, notice

RETRY_MS = 2000


async def _after(events: list[LiveEvent], last: EventId | None, log: EventLog | None,
                 stream_key: str) -> tuple[list[bytes], EventId | None]:
    """The frames of the events after `last` (events are in log order; those a replay already
    sent come first, if any), and the id of the last one sent.

    On a session's stream (`log` given) an event that follows an entry of the session's log
    this stream has not sent (its `prev` is past `last`) is preceded by the entries between."""
    if not events:
        return [], last
    if log is None and (last is None or events[0].id > last):
        return [event.frame for event in events], events[-1].id
    frames: list[bytes] = []
    for event in events:
        if last is not None and event.id <= last:
            continue
        if log is not None and last is not None and event.prev is not None \
                and event.prev > last:
            async for entry in log.read_entries_after(stream_key, last, event.prev):
                assert entry.id is not None  # read back from the log
                frames.append(frame(entry.data, event_id=entry.id))
        last = event.id
        frames.append(event.frame)
    return frames, last


async def event_stream(hub: Hub, log: EventLog, stream_key: str, session_id: str | None,
                       after: EventId | None, heartbeat_seconds: float,
                       accept: EventFilter | None = None) -> AsyncIterator[bytes]:
    # Subscribe before replaying: whatever is logged meanwhile arrives on the queue, and ids
    # already sent are skipped, so the hand-over from replay to live has no gap and no double.
    sub = hub.subscribe(session_id, accept)
    try:
        yield frame(retry_ms=RETRY_MS)
        last = after
        if after is not None:
            replay_after = after
            if await log.has_gap_after(stream_key, after):
                # Some of what was missed is no longer in the log: say so under the newest id,
                # then go on from there (the client refetches state meanwhile).
                replay_after = await log.last_id(stream_key)
                yield frame(notice(
                    RELAY_RESET, reason="events after the requested id were trimmed from "
                    "the log; refetch state, then continue from this event's id"),
                    event_id=replay_after)
            last = replay_after
            async for entry in log.read_entries_after(stream_key, replay_after):
                assert entry.id is not None  # entries read back from the log carry their id
                if accept is not None:
                    await accept.prepare(entry.sessions)
                if accept is None or accept(entry.sessions):
                    yield frame(entry.data, event_id=entry.id)
                last = entry.id
        else:
            yield frame(comment="connected")
        fill = log if session_id is not None else None  # session streams fill gaps (above)
        while True:
            if sub.overflowed.is_set():
                return  # too slow: the client reconnects with its last id
            if not await sub.wait(heartbeat_seconds):
                if sub.overflowed.is_set():
                    return
                yield frame(comment="heartbeat")
                continue
            # Everything already queued goes out as one write.
            pending, closing = sub.take()
            frames, last = await _after(pending, last, fill, stream_key)
            if closing:
                yield b"".join([*frames, frame(notice(
                    RELAY_SHUTDOWN, reason="relay is restarting; reconnect"))])
                return
            if frames:
                yield b"".join(frames)
    finally:
        hub.unsubscribe(sub)
