"""The event log: Redis Streams, one per session (the truth) and one global, in total order.

A session's events are appended to its own log, and to each ancestor's (a sub-agent's events
show in its parents' streams), with the session's state writes: one transaction per log, in
that log's hash slot (store/staging.py). Each log assigns its own ids (XADD *), so an id is a
position in one log only: `/api/sessions/{id}/events` resumes on the session's ids,
`/api/events` on the global log's.

The global log is filled by a second step, `publish`: one script in the global log's slot
appends an entry per event carrying its references, `<session>,<prev>,<id>` for every log that
holds it (`prev`: the entry before it in that log), and advances the `published` pointer of each
of those logs. A reference is accepted only when its `prev` is the pointer (`0-0` for a log with
none published yet; each log's entries join the global log in that log's order, with none left
out) and skipped when the pointer is already past it (publishing is idempotent). A refused
reference means some entry of that log was committed but not published yet (a writer crashed,
or is still on its way, such as a new session's route and ingester): `publish` reads
the missing entries from that log, publishes them, and goes on. An event is shown to global
readers once, with the copy in its own session's log; copies published apart from it (a
repair) only reach that log's session readers.

Which entries may be unpublished after a crash is recorded before each commit: every session
an ingester appends to is first added to its `unpublished` set, and the next ingester of that
opencode server publishes what those logs hold past their pointers (`repair`) before it ingests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..errors import InvalidEventId
from .keys import Keys
from .replies import entries, text
from .scripts import Script
from .staging import Staging

_new_tuple = tuple.__new__  # a NamedTuple made without its Python-level __new__ (hot paths)

# "<ms>-<seq>", or a bare "<ms>" meaning "<ms>-0" (so "0" is the log's very beginning).
_ENTRY_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$", re.ASCII)

_LESS = """
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am < bm end
  return tonumber(as) < tonumber(bs)
end
"""

# Publishes events to the global log. KEYS: the global log, the `published` hash.
# ARGV: the cap, then four per event: its own session ('' for none) with '!' after it when the
# session is gone (its pointer goes too), data, sessions (own first, space separated),
# references (`<session>,<prev>,<id>` space separated; none for an event of no session, which
# has no log of its own and is published as it comes).
# A log with no pointer counts as '0-0' (none of it published): a new session's first entries
# come from two writers (the creating route's relay.session.created, the ingester's
# session.created), and the one that publishes second must not skip the other's.
# Reply: {events handled, false, false, false} or, stopped at a reference whose log has
# unpublished entries before it, {events handled before it, that session, its pointer, the
# reference's prev}; then the global log's newest id before the call, and four per entry it
# added: the event's index (from 0), the entry's id, its references, '1' if hidden else '0'.
_PUBLISH = _LESS + """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local reply = {0, false, false, false, newest[1] and newest[1][1] or '0-0'}
for i = 2, #ARGV, 4 do
  local own, data, sessions, refs = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gone = string.sub(own, -1) == '!'
  if gone then own = string.sub(own, 1, -2) end
  local todo, visible = {}, refs == ''
  for log, prev, id in string.gmatch(refs, '([^%s,]+),([^%s,]+),([^%s,]+)') do
    -- No pointer: nothing of that log is published, its first entry's prev is '0-0'.
    local at = redis.call('HGET', KEYS[2], log) or '0-0'
    if less(at, id) then
      if at ~= prev and less(at, prev) then
        reply[1], reply[2], reply[3], reply[4] = (i - 2) / 4, log, at, prev
        return reply
      end
      todo[#todo + 1] = log .. ',' .. prev .. ',' .. id
      if log == own then visible = true end
    end
  end
  if #todo > 0 or refs == '' then
    local joined = table.concat(todo, ' ')
    local fields = {'e', data, 's', sessions, 'r', joined}
    if not visible then fields[#fields + 1] = 'h'; fields[#fields + 1] = '1' end
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    reply[#reply + 1] = (i - 2) / 4
    reply[#reply + 1] = id
    reply[#reply + 1] = joined
    reply[#reply + 1] = visible and '0' or '1'
    for _, ref in ipairs(todo) do
      local log, _, id = string.match(ref, '^([^,]+),([^,]+),([^,]+)$')
      redis.call('HSET', KEYS[2], log, id)
    end
  end
  if gone then redis.call('HDEL', KEYS[2], own) end
end
reply[1] = (#ARGV - 1) / 4
return reply
"""

# Appends a batch's events to one session's log (one command however many: cheap to pack).
# KEYS: the log. ARGV: its cap, '1' to let it expire (its session is gone) or '0', then two per
# event: its data and its sessions. Reply: the log's newest id before, then each new id.
_APPEND = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = {newest[1] and newest[1][1] or '0-0'}
for i = 3, #ARGV, 2 do
  out[#out + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                             'e', ARGV[i], 's', ARGV[i + 1])
end
if ARGV[2] == '1' then redis.call('EXPIRE', KEYS[1], 3600) end
return out
"""

# One Redis (no slots to respect): the append and the publish in one step, inside the batch's
# MULTI, so nothing is ever committed unpublished. The same entries and pointers as the two
# steps write. KEYS: the global log, the `published` hash, then every session log the events
# touch. ARGV: the global cap, the session cap, then two per event: its data and
# "<flag>|<sessions>|<i,j…>" (flag 1: its own session is gone; i,j…: the KEYS indexes of its
# sessions' logs, own first).
_APPEND_AND_PUBLISH = """
local gcap, scap = ARGV[1], ARGV[2]
local last, pointers = {}, {}  -- per session log: its newest id; the pointers, written at the end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = {newest[1] and newest[1][1] or '0-0'}
local function append(key, name, data, sessions)
  local before = last[key]
  if not before then
    local found = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    before = found[1] and found[1][1] or '0-0'
  end
  local id = redis.call('XADD', key, 'MAXLEN', '~', scap, '*', 'e', data, 's', sessions)
  last[key], pointers[name] = id, id
  return name .. ',' .. before .. ',' .. id
end
for i = 3, #ARGV, 2 do
  local data, meta = ARGV[i], ARGV[i + 1]
  local bar = string.find(meta, '|', 3, true)
  local sessions, indexes = string.sub(meta, 3, bar - 1), string.sub(meta, bar + 1)
  local joined, own, first = '', nil, nil
  if indexes ~= '' and not string.find(indexes, ',', 1, true) then  -- one session's event
    own, first = KEYS[tonumber(indexes)], sessions
    joined = append(own, sessions, data, sessions)
  elseif indexes ~= '' then  -- a sub-agent's event: its own log, then its ancestors'
    local names, refs, n = {}, {}, 0
    for name in string.gmatch(sessions, '%S+') do names[#names + 1] = name end
    first = names[1]
    for index in string.gmatch(indexes, '%d+') do
      n = n + 1
      local key = KEYS[tonumber(index)]
      own = own or key
      refs[n] = append(key, names[n], data, sessions)
    end
    joined = table.concat(refs, ' ')
  end
  out[#out + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', gcap, '*', 'e', data,
                             's', sessions, 'r', joined)
  out[#out + 1] = joined
  if string.byte(meta, 1) == 49 and own then  -- '1': its session is gone
    redis.call('EXPIRE', own, 3600)
    pointers[first] = false
  end
end
local set = {}
for name, id in pairs(pointers) do
  if id then
    set[#set + 1] = name
    set[#set + 1] = id
  else
    redis.call('HDEL', KEYS[2], name)
  end
  if #set >= 1000 then
    redis.call('HSET', KEYS[2], unpack(set))
    set = {}
  end
end
if #set > 0 then redis.call('HSET', KEYS[2], unpack(set)) end
return out
"""

# Moves a log's pointer forward to ARGV[2] (never back). KEYS: the `published` hash.
# ARGV: the session, the id. Used when entries a reference needs were trimmed away.
_ADVANCE = _LESS + """
local at = redis.call('HGET', KEYS[1], ARGV[1])
if not at or less(at, ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


class EventId(NamedTuple):
    """A position in one log (Redis's `<ms>-<seq>`), ordered as the log orders them. A tuple:
    the hub makes and compares thousands a second."""

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
    def of_entry(cls, raw: bytes | str) -> EventId:
        """The id of an entry Redis gave back (always `<ms>-<seq>`): no pattern needed. (A
        tuple made in C: the hub makes one or more per event it hands out.)"""
        ms, _, seq = raw.partition(b"-" if isinstance(raw, bytes) else "-")  # type: ignore[arg-type]
        return _new_tuple(cls, (int(ms), int(seq)))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ZERO = EventId(0, 0)


class Ref(NamedTuple):
    """An event's place in one session's log: its id there and the entry before it."""

    session: str
    prev: EventId
    id: EventId

    def __str__(self) -> str:
        return f"{self.session},{self.prev},{self.id}"

    @classmethod
    def parse(cls, raw: bytes | str) -> Ref:
        """A reference as the log scripts write it (ids from Redis, so no pattern check)."""
        session, prev, id_ = raw.split(b"," if isinstance(raw, bytes) else ",")  # type: ignore[arg-type]
        return _new_tuple(cls, (text(session), EventId.of_entry(prev), EventId.of_entry(id_)))


class LogEntry(NamedTuple):
    id: EventId | None  # None until the log assigned it
    data: bytes          # the event JSON, as opencode sent it
    sessions: tuple[str, ...]  # the sessions whose streams it belongs to (own + ancestors)
    expire_own_log: bool = False  # its session is gone: that session's log stays only briefly
    refs: tuple[Ref, ...] = ()  # global log: where it is in each session log that holds it
    hidden: bool = False  # global log: a copy for session readers only (see the module)


def new_entry(data: bytes, sessions: tuple[str, ...], expire_own_log: bool = False) -> LogEntry:
    """An entry to append (no id yet), made without LogEntry's Python-level constructor: the
    ingester makes one per event."""
    return _new_tuple(LogEntry, (None, data, sessions, expire_own_log, (), False))


@dataclass
class Logged:
    """Entries this process just added to the global log, contiguous there: the entry before
    them (so a reader can tell whether it has everything up to them), the first and the last;
    the entries themselves are made from the script's reply only when asked for (a replica
    with no client of its own never needs them)."""

    prev: EventId
    first: EventId
    last: EventId
    make: Callable[[], list[LogEntry]]

    def entries(self) -> list[LogEntry]:
        return self.make()


class CommitWatcher(Protocol):
    """Hears this process's commits to the log (the hub: fanout/hub.py), so what was just
    written need not be read back."""

    def committing(self) -> None: ...  # a commit starts

    async def committed(self, logged: list[Logged]) -> None: ...  # it ended (may be empty);
    # called exactly once per `committing`, also when the commit failed (empty)


@dataclass
class Appended:
    """Events staged for their session logs; after the commit, where each one landed."""

    entries: list[LogEntry]
    refs: list[list[Ref]] = field(default_factory=list)
    published: bool = False  # published with the commit (one Redis)
    logged: list[Logged] = field(default_factory=list)  # the global entries, once published

    def published_with_commit(self, reply: Any, _follow_up: Pipeline) -> None:
        """One Redis: the append-and-publish script's reply (the global log's newest id
        before, then each event's global id and references)."""
        def make() -> list[LogEntry]:
            refs = _RefReader()
            of_entry, new = EventId.of_entry, _new_tuple
            return [new(LogEntry, (of_entry(reply[i]), entry.data, entry.sessions,
                                   entry.expire_own_log, refs(reply[i + 1]), False))
                    for i, entry in zip(range(1, len(reply), 2), self.entries, strict=True)]

        if len(reply) > 1:
            self.logged.append(Logged(EventId.of_entry(reply[0]), EventId.of_entry(reply[1]),
                                      EventId.of_entry(reply[-2]), make))

    def landed(self, session: str, indexes: list[int], reply: Any, _follow_up: Pipeline) -> None:
        """The append script's reply for `session`: its newest id before, then each new id."""
        prev = EventId.parse(reply[0])
        for index, raw in zip(indexes, reply[1:], strict=True):
            added = EventId.parse(raw)
            self.refs[index].append(Ref(session, prev, added))
            prev = added


class EventLog:
    def __init__(self, redis: Redis, keys: Keys, max_events: int, session_max_events: int) -> None:
        self.redis = redis
        self.watcher: CommitWatcher | None = None  # hears each commit of this process
        self.keys = keys
        self.max_events = max_events
        self.session_max_events = session_max_events
        self._append = Script(redis, _APPEND)
        self._append_and_publish = Script(redis, _APPEND_AND_PUBLISH)
        self._publish = Script(redis, _PUBLISH)
        self._advance = Script(redis, _ADVANCE)

    # ----- writing ---------------------------------------------------------------------
    async def stage_append(self, staging: Staging, log: list[LogEntry]) -> Appended:
        """Stages each event on its sessions' logs, each in that session's transaction (one
        script call per log). Call `publish` with the result once the staging committed."""
        if not staging.split:
            appended = Appended(log, published=True)
            await self._stage_append_and_publish(staging, appended)
            return appended
        appended = Appended(log, [[] for _ in log])
        by_log: dict[str, tuple[list[int], list[Any], list[bool]]] = {}
        for index, entry in enumerate(log):
            sessions = " ".join(entry.sessions)
            for session in entry.sessions:
                indexes, args, expire = by_log.setdefault(session, ([], [], [False]))
                indexes.append(index)
                args += [entry.data, sessions]
            if entry.expire_own_log and entry.sessions:
                by_log[entry.sessions[0]][2][0] = True
        for session, (indexes, args, expire) in by_log.items():
            pipe = staging.on(session)
            await self._append(keys=[self.keys.session_events(session)],
                               args=[self.session_max_events, "1" if expire[0] else "0",
                                     *args], client=pipe)
            staging.then(pipe, partial(appended.landed, session, indexes))
        return appended

    async def _stage_append_and_publish(self, staging: Staging, appended: Appended) -> None:
        log = appended.entries
        if not log:
            return
        keys = [self.keys.events, self.keys.published]
        index: dict[str, int] = {}
        args: list[Any] = [self.max_events, self.session_max_events]
        for entry in log:
            positions = []
            for sid in entry.sessions:
                if sid not in index:
                    keys.append(self.keys.session_events(sid))
                    index[sid] = len(keys)  # Lua's KEYS are 1-based
                positions.append(str(index[sid]))
            flag = "1" if entry.expire_own_log else "0"
            args += [entry.data, f"{flag}|{' '.join(entry.sessions)}|{','.join(positions)}"]
        pipe = staging.on("")
        await self._append_and_publish(keys=keys, args=args, client=pipe)
        staging.then(pipe, appended.published_with_commit)

    async def commit(self, stage: Staging, log: list[LogEntry], owner: str,
                     marked: set[str] | None = None) -> None:
        """Commits `stage` with `log` appended to its sessions' logs, then publishes `log`.

        `owner` (the opencode server whose ingester repairs after a crash) first records the
        sessions as possibly unpublished, except those in `marked` (recorded already; the
        newly recorded are added to it). The watcher hears of the commit and what it added."""
        watcher = self.watcher
        if watcher is not None:
            watcher.committing()
        logged: list[Logged] = []
        try:
            appended = await self.stage_append(stage, log)
            unmarked = {s for entry in log for s in entry.sessions} - (marked or set())
            if unmarked and not appended.published:
                await self.redis.sadd(self.keys.unpublished(owner), *sorted(unmarked))
                if marked is not None:
                    marked |= unmarked
            await stage.commit()
            if log:
                await self.publish(appended)
            logged = appended.logged
        finally:
            if watcher is not None:
                await watcher.committed(logged)

    async def publish(self, appended: Appended) -> None:
        """Publishes committed events to the global log (see the module's docstring); what it
        added is in `appended.logged`."""
        if appended.published:
            return
        appended.logged += await self._publish_events([
            (_own(entry), entry.data, entry.sessions, _own_first(entry, refs))
            for entry, refs in zip(appended.entries, appended.refs, strict=True)])

    async def _publish_events(
            self, events: Sequence[tuple[str, bytes, Sequence[str], Sequence[Ref]]],
    ) -> list[Logged]:
        """Publishes `events`; answers what was added to the global log, in its order."""
        healed: set[tuple[str, str]] = set()
        logged: list[Logged] = []
        while events:
            args: list[Any] = [self.max_events]
            for own, data, sessions, refs in events:
                args += [own, data, " ".join(sessions), " ".join(map(str, refs))]
            reply = await self._publish(keys=[self.keys.events, self.keys.published], args=args)
            if len(reply) > 5:
                logged.append(Logged(EventId.of_entry(reply[4]), EventId.of_entry(reply[6]),
                                     EventId.of_entry(reply[-3]),
                                     partial(_published_entries, events, reply)))
            done = int(reply[0])
            if reply[1] is None or reply[1] is False or done >= len(events):
                return logged
            session, at, prev = text(reply[1]), text(reply[2]), text(reply[3])
            if (session, prev) in healed:  # what it needs is gone from the log (trimmed)
                await self._advance(keys=[self.keys.published], args=[session, prev])
            else:
                healed.add((session, prev))
                logged += await self._heal(session, EventId.parse(at), EventId.parse(prev))
            events = events[done:]
        return logged

    async def _heal(self, session: str, after: EventId, until: EventId | None) -> list[Logged]:
        """Publishes the entries of `session`'s log after `after` (up to `until`), each with
        its reference to that log only; answers what that added to the global log."""
        stream = self.keys.session_events(session)
        found = entries(await self.redis.xrange(stream, min=f"({after}",
                                                max=str(until) if until else "+"))
        events: list[tuple[str, bytes, Sequence[str], Sequence[Ref]]] = []
        prev = after
        for raw_id, fields in found:
            at = EventId.parse(raw_id)
            sessions = text(fields.get(b"s", b"")).split() or [session]
            events.append((sessions[0], fields[b"e"], sessions, [Ref(session, prev, at)]))
            prev = at
        logged = await self._publish_events(events) if events else []
        if until is not None and prev != until:
            await self._advance(keys=[self.keys.published], args=[session, str(until)])
        return logged

    async def repair(self, owner: str) -> int:
        """Publishes whatever the logs `owner` appended to hold past their pointers (a crash
        between commit and publish), then forgets them. Returns how many logs it looked at."""
        sessions = sorted(text(s) for s in await self.redis.smembers(self.keys.unpublished(owner)))
        if sessions:
            pointers = await self.redis.hmget(self.keys.published, sessions)
            for session, at in zip(sessions, pointers, strict=True):
                await self._heal(session, EventId.parse(at) if at else ZERO, None)
            await self.redis.srem(self.keys.unpublished(owner), *sessions)
        return len(sessions)

    def stage_forget(self, pipe: Pipeline, session: str) -> None:
        """Stages dropping a removed session's pointer."""
        pipe.hdel(self.keys.published, session)

    # ----- reading ---------------------------------------------------------------------
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

    async def read_entries_after(self, stream: str, after: EventId, until: EventId | None = None,
                                 batch: int = 1000) -> AsyncIterator[LogEntry]:
        """The entries after `after` (up to `until`), oldest first, each with its sessions.
        On the global log, copies meant for session readers only are left out."""
        cursor = f"({after}"
        high = str(until) if until is not None else "+"
        is_global = stream == self.keys.events
        parse = EntryReader()
        while True:
            found = entries(await self.redis.xrange(stream, min=cursor, max=high, count=batch))
            for raw_id, fields in found:
                entry = parse(raw_id, fields)
                if not (is_global and entry.hidden):
                    yield entry
            if len(found) < batch:
                return
            cursor = f"({text(found[-1][0])}"


def _own(entry: LogEntry) -> str:
    """The publish script's own-session argument (see `_PUBLISH`)."""
    own = entry.sessions[0] if entry.sessions else ""
    return own + "!" if own and entry.expire_own_log else own


def _own_first(entry: LogEntry, refs: list[Ref]) -> list[Ref]:
    """`refs` in the order of the entry's sessions: its own, then its ancestors'."""
    order = {sid: place for place, sid in enumerate(entry.sessions)}
    return sorted(refs, key=lambda ref: order[ref.session])


def parse_entry(raw_id: bytes, fields: dict[bytes, bytes]) -> LogEntry:
    """One entry read from a log."""
    return EntryReader()(raw_id, fields)


class EntryReader:
    """Parses a run of log entries read in order (a replay, or a replica's hub reading every
    entry another process wrote): the sessions and the references' ids repeat from one entry to
    the next, and are parsed once."""

    def __init__(self) -> None:
        self._refs = _RefReader()
        self._sessions: dict[bytes, tuple[str, ...]] = {}

    def __call__(self, raw_id: bytes, fields: dict[bytes, bytes]) -> LogEntry:
        raw_sessions = fields.get(b"s", b"")
        sessions = self._sessions.get(raw_sessions)
        if sessions is None:
            sessions = self._sessions[raw_sessions] = tuple(raw_sessions.decode().split())
        refs = fields.get(b"r")
        return _new_tuple(LogEntry, (EventId.of_entry(raw_id), fields[b"e"], sessions, False,
                                     self._refs(refs) if refs else (), b"h" in fields))


def _published_entries(events: Sequence[tuple[str, bytes, Sequence[str], Sequence[Ref]]],
                       reply: list[Any]) -> list[LogEntry]:
    """The global entries a publish script's `reply` says it added for `events`."""
    added = []
    refs = _RefReader()
    for i in range(5, len(reply), 4):
        _own, data, sessions, _refs_sent = events[int(reply[i])]
        added.append(LogEntry(EventId.of_entry(reply[i + 1]), data, tuple(sessions),
                              refs=refs(reply[i + 2]), hidden=text(reply[i + 3]) == "1"))
    return added


class _RefReader:
    """`_refs` for a run of one script's reply, in log order: an entry's `prev` in a session's
    log is most often the id of the entry before it there, parsed already (the hub hands out
    every event this way: half the parsing)."""

    def __init__(self) -> None:
        self._last: dict[bytes, tuple[bytes, EventId, str]] = {}  # per log: its last id, raw

    def __call__(self, raw: bytes | str) -> tuple[Ref, ...]:
        if not isinstance(raw, bytes):
            return _refs(raw)
        refs = []
        last, of_entry, new = self._last, EventId.of_entry, _new_tuple
        for one in raw.split():
            session, prev_raw, id_raw = one.split(b",")
            known = last.get(session)
            if known is not None and known[0] == prev_raw:
                prev, name = known[1], known[2]
            else:
                prev, name = of_entry(prev_raw), session.decode()
            id_ = of_entry(id_raw)
            last[session] = (id_raw, id_, name)
            refs.append(new(Ref, (name, prev, id_)))
        return tuple(refs)


def _refs(raw: str) -> tuple[Ref, ...]:
    """The references a log script wrote (`<session>,<prev>,<id>`, space separated), from a
    client that decodes replies (the relay's never do: `_RefReader` takes bytes)."""
    return tuple(Ref.parse(ref) for ref in raw.split())
