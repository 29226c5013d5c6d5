"""The event log: Redis Streams, one for every event and one per session.

Both streams use the same entry id for the same event (the ingestor assigns it), so one id is
a valid resume position on `/api/events` and on a session's stream alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .keys import Keys

_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


class InvalidEventId(ValueError):
    pass


@dataclass(frozen=True, order=True)
class EventId:
    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str | bytes) -> "EventId":
        if isinstance(text, bytes):
            text = text.decode()
        found = _ENTRY_ID.match(text.strip())
        if not found:
            raise InvalidEventId(f"not an event id: {text[:40]!r} (expected '<ms>-<seq>')")
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    def next_after(self, now_ms: int) -> "EventId":
        return EventId(now_ms, 0) if now_ms > self.ms else EventId(self.ms, self.seq + 1)


ZERO = EventId(0, 0)


@dataclass(frozen=True)
class LogEntry:
    id: EventId
    data: bytes          # the event JSON, as opencode sent it
    sessions: tuple[str, ...]  # the sessions whose streams it belongs to (own + ancestors)


class EventLog:
    def __init__(self, redis: Redis, keys: Keys, max_events: int, session_max_events: int) -> None:
        self.redis = redis
        self.keys = keys
        self.max_events = max_events
        self.session_max_events = session_max_events

    def stage_append(self, pipe: Pipeline, entry: LogEntry) -> None:
        fields = {"e": entry.data, "s": " ".join(entry.sessions)}
        pipe.xadd(self.keys.events, fields, id=str(entry.id), maxlen=self.max_events,
                  approximate=True)
        for sid in entry.sessions:
            pipe.xadd(self.keys.session_events(sid), {"e": entry.data}, id=str(entry.id),
                      maxlen=self.session_max_events, approximate=True)

    async def last_id(self, stream: str | None = None) -> EventId:
        found = await self.redis.xrevrange(stream or self.keys.events, count=1)
        return EventId.parse(found[0][0]) if found else ZERO

    async def first_id(self, stream: str) -> EventId | None:
        found = await self.redis.xrange(stream, count=1)
        return EventId.parse(found[0][0]) if found else None

    async def has_gap_after(self, stream: str, after: EventId) -> bool:
        """True when entries after `after` were trimmed away, so a replay would miss some."""
        if after == ZERO:
            return False
        first = await self.first_id(stream)
        if first is None or first <= after:
            return False
        info = await self.redis.xinfo_stream(stream)
        deleted = info.get("max-deleted-entry-id") or info.get(b"max-deleted-entry-id")
        if deleted is not None:
            return EventId.parse(deleted) > after
        # Redis < 7 does not say what was trimmed: assume the worst once the cap was reached.
        return info.get("length", 0) >= min(self.max_events, self.session_max_events) // 2

    async def read_after(self, stream: str, after: EventId,
                         batch: int = 1000) -> AsyncIterator[tuple[EventId, bytes]]:
        async for entry in self.read_entries_after(stream, after, batch):
            yield entry.id, entry.data

    async def read_entries_after(self, stream: str, after: EventId,
                                 batch: int = 1000) -> AsyncIterator[LogEntry]:
        """Like read_after, with the sessions of each entry (known on the global stream)."""
        cursor = f"({after}"
        while True:
            found = await self.redis.xrange(stream, min=cursor, max="+", count=batch)
            for raw_id, fields in found:
                yield LogEntry(EventId.parse(raw_id), fields[b"e"],
                               tuple(fields.get(b"s", b"").decode().split()))
            if len(found) < batch:
                return
            cursor = f"({_text(found[-1][0])}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
