"""The event log: Redis Streams, one for every event and one per session.

Both streams use the same entry id for the same event (the ingestor assigns it), so one id is
a valid resume position on `/api/events` and on a session's stream alike.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..errors import InvalidEventId
from .keys import Keys
from .replies import entries, text

# "<ms>-<seq>", or a bare "<ms>" meaning "<ms>-0" (so "0" is the log's very beginning).
_ENTRY_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$", re.ASCII)


# Appends a batch of events. KEYS: the global log, then every session log the batch touches.
# ARGV: global cap, session cap, then two per event: its data, and "<flag>|<session ids>|<i,j…>"
# where flag 1 lets its own log expire (its session is gone) and i,j… are the KEYS indexes of
# its session logs, own first. Two arguments per event keep the command cheap to pack.
_APPEND = """
for i = 3, #ARGV, 2 do
  local data, meta = ARGV[i], ARGV[i + 1]
  local flag, sessions, indexes = string.match(meta, '^(%d)|([^|]*)|(.*)$')
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', data, 's', sessions)
  local own = nil
  for index in string.gmatch(indexes, '%d+') do
    local key = KEYS[tonumber(index)]
    own = own or key
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[2], id, 'e', data)
  end
  if flag == '1' and own then
    redis.call('EXPIRE', own, 3600)
  end
end
return 1
"""


@dataclass(frozen=True, order=True)
class EventId:
    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str | bytes) -> EventId:
        if isinstance(text, bytes):
            text = text.decode()
        found = _ENTRY_ID.match(text.strip())
        if not found:
            raise InvalidEventId(f"not an event id: {text[:40]!r} "
                                 "(expected '<ms>-<seq>' or '<ms>')")
        return cls(int(found.group(1)), int(found.group(2) or 0))

    @classmethod
    def of_entry(cls, raw: bytes) -> EventId:
        """The id of an entry read back from Redis (always `<ms>-<seq>`): no pattern needed."""
        ms, _, seq = raw.partition(b"-")
        return cls(int(ms), int(seq))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ZERO = EventId(0, 0)


@dataclass(frozen=True)
class LogEntry:
    id: EventId | None  # None until the log assigned it
    data: bytes          # the event JSON, as opencode sent it
    sessions: tuple[str, ...]  # the sessions whose streams it belongs to (own + ancestors)
    expire_own_log: bool = False  # its session is gone: that session's log stays only briefly


class EventLog:
    def __init__(self, redis: Redis, keys: Keys, max_events: int, session_max_events: int) -> None:
        self.redis = redis
        self.keys = keys
        self.max_events = max_events
        self.session_max_events = session_max_events
        self._append = redis.register_script(_APPEND)

    async def stage_append(self, pipe: Pipeline, entries: list[LogEntry]) -> None:
        """Stages events for the global log and their sessions' logs, each under one id.

        Redis assigns the ids (XADD *) inside one script, so an entry lands in every log at once
        and several ingesting relays (one per opencode server) can share the global log.
        """
        keys = [self.keys.events]
        index: dict[str, int] = {}
        args: list[bytes | str | int] = [self.max_events, self.session_max_events]
        for entry in entries:
            positions = []
            for sid in entry.sessions:
                if sid not in index:
                    keys.append(self.keys.session_events(sid))
                    index[sid] = len(keys)  # Lua's KEYS are 1-based
                positions.append(str(index[sid]))
            flag = "1" if entry.expire_own_log else "0"
            args += [entry.data, f"{flag}|{' '.join(entry.sessions)}|{','.join(positions)}"]
        await self._append(keys=keys, args=args, client=pipe)  # queued, not sent yet

    async def last_id(self, stream: str | None = None) -> EventId:
        found = entries(await self.redis.xrevrange(stream or self.keys.events, count=1))
        return EventId.parse(found[0][0]) if found else ZERO

    async def first_id(self, stream: str) -> EventId | None:
        found = entries(await self.redis.xrange(stream, count=1))
        return EventId.parse(found[0][0]) if found else None

    async def has_gap_after(self, stream: str, after: EventId) -> bool:
        """True when entries after `after` were trimmed away, so a replay would miss some."""
        if after == ZERO:
            return False
        first = await self.first_id(stream)
        if first is None or first <= after:
            return False
        info = await self.redis.xinfo_stream(stream)
        added = info.get("entries-added")
        if added is not None:
            # Redis 7: entries before `first` were removed (trimmed), so some after `after`
            # may be among them. Resetting when none were is safe; missing one is not.
            return int(added) > int(info.get("length", 0))
        # Redis < 7 does not say what was trimmed: assume the worst once the cap was reached.
        return int(info.get("length", 0)) >= min(self.max_events, self.session_max_events) // 2

    async def read_entries_after(self, stream: str, after: EventId,
                                 batch: int = 1000) -> AsyncIterator[LogEntry]:
        """The entries after `after`, oldest first, each with its sessions (known on the global
        stream only)."""
        cursor = f"({after}"
        while True:
            found = entries(await self.redis.xrange(stream, min=cursor, max="+", count=batch))
            for raw_id, fields in found:
                yield LogEntry(EventId.parse(raw_id), fields[b"e"],
                               tuple(fields.get(b"s", b"").decode().split()))
            if len(found) < batch:
                return
            cursor = f"({text(found[-1][0])}"
