"""One reader of the Redis event log per relay process, fanning out to bounded client queues.

Clients never touch Redis for live events: the hub takes each entry of the global log once and
hands the same pre-encoded bytes to every subscriber whose filter matches. What this process
commits to the log it hears of from the log itself (`committed`, with the ids Redis gave) and
fans out without reading it back, when it follows the last entry the hub has; the hub reads from
Redis what other processes (other replicas' ingesters) add. While this process commits, a blocked
read asks for one entry: if it is one this process is committing, the hub waits for that commit
instead of reading it all. A process that has not committed lately (a standby replica) reads up
to a thousand entries at once.

A subscriber of every event gets it under the global log's id; a subscriber of one session gets
it under that session's own log id, with the id before it there (`prev`), both carried by the
global entry (store/log.py), so its replay (the session's log) and the live events join without
gap or double. A read of the log goes to a subscriber as one list (one queue operation per read
and client, not per event: a burst of deltas to many clients cost more in queue traffic than in
anything else). A subscriber with more than `queue_size` events waiting is dropped (it resumes
with Last-Event-ID), so a slow client never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from ..store.connect import refresh
from ..store.keys import Keys
from ..store.log import EntryReader, EventId, EventLog, LogEntry, Logged, Ref
from ..store.replies import xread_entries
from .sse import event_frame

logger = logging.getLogger("opencode_relay.fanout")
_new_tuple = tuple.__new__  # a NamedTuple made without its Python-level __new__ (per event)
_READ_COUNT = 1000  # entries per read of the log
_INGESTING_FOR = 10.0  # s after this process's last commit that its hub reads one entry first


class LiveEvent(NamedTuple):
    """One event as a stream sends it (a tuple: the hub makes one per event and stream kind)."""

    id: EventId
    frame: bytes  # the SSE frame, ready to send
    prev: EventId | None = None  # on a session's stream: its log's entry before this one


CLOSE = LiveEvent(EventId(0, 0), b"")  # queued to end a stream


class EventFilter(Protocol):
    """Which events of the global stream a subscriber may get (security/access.py)."""

    async def prepare(self, sessions: Iterable[str]) -> None: ...  # may wait; called first

    def __call__(self, sessions: Sequence[str]) -> bool: ...  # must not wait


@dataclass(eq=False)
class Subscriber:
    """One client's queue: the reads of the log it was handed, and a waiter for its stream (a
    plain list and one future: asyncio.Queue and wait_for cost more than the fan-out itself
    when a thousand streams wake for every event)."""

    session_id: str | None  # None: every event
    accept: EventFilter | None = None
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    queued: int = 0  # events handed over and not yet taken
    _reads: list[list[LiveEvent]] = field(default_factory=list)  # in log order
    _waiter: asyncio.Future[None] | None = None
    # The quiet timer: one per subscriber, kept across waits (a timer made and cancelled per
    # wait cost as much as the wake-up itself with a thousand streams); it ends a wait that
    # lasted until `_quiet_at`, and moves on when events came meanwhile.
    _timer: asyncio.TimerHandle | None = None
    _quiet_at: float = 0.0

    def put(self, events: list[LiveEvent]) -> None:
        self._reads.append(events)
        self.queued += len(events)
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Waits until something is queued (or the subscriber is woken) or `timeout` passes;
        answers whether something is queued."""
        if not self._reads:
            loop = asyncio.get_running_loop()
            self._quiet_at = loop.time() + timeout
            waiter = self._waiter = loop.create_future()
            if self._timer is None or self._timer.when() > self._quiet_at:  # none, or too late
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(self._quiet_at, self._quiet)
            try:
                await waiter
            finally:
                self._waiter = None
        return bool(self._reads)

    def _quiet(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # not waiting now: the next wait sets the timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._quiet_at:  # this wait began after the timer was set
            self._timer = loop.call_at(self._quiet_at, self._quiet)
        else:
            _release(self._waiter)

    def close(self) -> None:
        """Its stream ended: no timer left behind."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def take(self) -> tuple[list[LiveEvent], bool]:
        """Everything queued, in order, up to a CLOSE; and whether there was one."""
        events: list[LiveEvent] = []
        closing = False
        for read in self._reads:
            if read and read[0] is CLOSE:
                closing = True
                break
            events += read
        self._reads.clear()
        self.queued = 0
        return events, closing


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Hub:
    def __init__(self, redis: Redis, keys: Keys, log: EventLog, queue_size: int = 2000,
                 on_drop: Callable[[], None] | None = None,
                 on_dispatch: Callable[[EventId], None] | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.log = log
        self.queue_size = queue_size
        self.on_drop = on_drop or (lambda: None)
        self.on_dispatch = on_dispatch or (lambda _id: None)
        self.closed = False
        self._all: set[Subscriber] = set()
        self._by_session: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.position: EventId | None = None  # the last entry of the global log handed out
        self._committing = 0  # commits of this process under way (EventLog.watcher)
        self._committed_at = -_INGESTING_FOR  # when the last of them began (time.monotonic)
        self._settled = asyncio.Event()  # set while none is
        self._settled.set()

    @property
    def client_count(self) -> int:
        return len(self._all) + sum(len(s) for s in self._by_session.values())

    async def start(self) -> None:
        with contextlib.suppress(RedisError, RedisClusterException, OSError):
            self.position = await self.log.last_id()  # else the reader asks, until it can
        self._task = asyncio.create_task(self._read_forever())

    async def stop(self) -> None:
        # The flag as well as the cancel: a cancel that lands inside redis-py's read can come
        # back as a connection error (or nothing), and the reader must end all the same.
        self._stopping = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def subscribe(self, session_id: str | None, accept: EventFilter | None = None) -> Subscriber:
        sub = Subscriber(session_id, accept)
        if self.closed:  # shutting down: the stream ends at once, the client goes elsewhere
            sub.closing = True
            sub.put([CLOSE])
        if session_id is None:
            self._all.add(sub)
        else:
            self._by_session.setdefault(session_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        if sub.session_id is None:
            self._all.discard(sub)
            return
        group = self._by_session.get(sub.session_id)
        if group is not None:
            group.discard(sub)
            if not group:
                del self._by_session[sub.session_id]

    def close_all(self) -> None:
        """Ends every stream (shutdown): clients reconnect, elsewhere or after the restart."""
        self.closed = True
        for sub in [*self._all, *(s for group in self._by_session.values() for s in group)]:
            sub.closing = True
            if sub.queued >= self.queue_size:
                sub.overflowed.set()
            sub.put([CLOSE])

    def _deliver(self, sub: Subscriber, events: list[LiveEvent]) -> None:
        """Queues `events` (shared with other subscribers: never changed) for one client."""
        if sub.overflowed.is_set():
            return
        if sub.queued + len(events) > self.queue_size:
            sub.overflowed.set()
            sub.wake()  # a stream waiting on an empty queue ends at once
            self.on_drop()
            return
        sub.put(events)

    def dispatch(self, event_id: EventId, data: bytes, sessions: Sequence[str],
                 refs: Sequence[Ref] = (), hidden: bool = False) -> None:
        """Fans out one global log entry (see `dispatch_read`)."""
        self.dispatch_read([LogEntry(event_id, data, tuple(sessions), refs=tuple(refs),
                                     hidden=hidden)])

    def dispatch_read(self, read: Sequence[LogEntry]) -> None:
        """Fans out a read of the global log, oldest first: to every-event subscribers each
        entry not `hidden` under its global id, to each session's subscribers under its `refs`
        id there. Each subscriber gets its share as one list."""
        new = _new_tuple
        if self._all:
            everything = [(new(LiveEvent, (entry.id, event_frame(entry.data, b"%d-%d" % entry.id),
                                           None)), entry.sessions)
                          for entry in read if not entry.hidden and entry.id is not None]
            events = [event for event, _sessions in everything]
            for sub in self._all:
                accept = sub.accept
                picked = events if accept is None else [
                    event for event, sessions in everything if accept(sessions)]
                if picked:
                    self._deliver(sub, picked)
        if self._by_session:
            watched = self._by_session
            by_session: dict[str, list[LiveEvent]] = {}
            for entry in read:
                for ref in entry.refs:
                    if ref.session in watched:
                        event = new(LiveEvent, (ref.id, event_frame(entry.data, b"%d-%d" % ref.id),
                                                ref.prev))
                        found = by_session.get(ref.session)
                        if found is None:
                            by_session[ref.session] = [event]
                        else:
                            found.append(event)
            for sid, shared in by_session.items():
                for sub in watched.get(sid, ()):
                    self._deliver(sub, shared)

    async def _prepare_filters(self, sessions: set[str]) -> None:
        filters = {id(sub.accept): sub.accept for sub in self._all if sub.accept is not None}
        for accept in filters.values():
            await accept.prepare(sessions)

    # ----- what this process commits (store/log.py CommitWatcher) ---------------------------
    def committing(self) -> None:
        self._committing += 1
        self._committed_at = time.monotonic()
        self._settled.clear()

    async def committed(self, logged: list[Logged]) -> None:
        """Fans out what a commit of this process added to the global log, when nothing
        comes before it that the hub has not handed out (else the reader reads it all)."""
        try:
            for added in logged:
                if self.position is None or self.position < added.prev:
                    return
                if not self._all and not self._by_session:
                    self._pass(added.first, added.last)
                    continue
                try:
                    await self._hand_out(added.entries())
                except (RedisError, RedisClusterException, OSError) as exc:
                    # A filter could not look a session up: the reader reads these instead.
                    logger.warning("fan-out of a commit deferred to the log reader: %s", exc)
                    return
                except Exception:  # a bug must not reach the commit: the reader tries them
                    logger.exception("fan-out of a commit failed; left to the log reader")
                    return
        finally:
            self._committing -= 1
            if not self._committing:
                self._settled.set()

    def _pass(self, first: EventId, last: EventId) -> None:
        """Nobody listens here: moves the position past `first`..`last` without the work (a
        client that comes later replays what it missed from Redis)."""
        assert self.position is not None
        if last > self.position:
            self.position = last
            self.on_dispatch(first)

    async def _hand_out(self, entries: list[LogEntry]) -> None:
        """Fans out the entries (oldest first, contiguous in the global log) that follow
        `position`, and moves it past them."""
        assert self.position is not None
        position = self.position
        fresh = entries if entries and entries[0].id is not None and entries[0].id > position \
            else [entry for entry in entries if entry.id is not None and entry.id > position]
        if not fresh:
            return
        if self._all or self._by_session:
            if self._all:
                await self._prepare_filters({s for entry in fresh for s in entry.sessions})
                fresh = [entry for entry in fresh if entry.id > self.position]  # type: ignore[operator]
            try:
                self.dispatch_read(fresh)
            except Exception:  # a bug must not end live fan-out (nor a commit): skip these
                logger.exception("fan-out failed on a read of the log; skipping it")
        # Once per read, for its oldest entry (the one that waited longest): per event, the
        # histogram cost as much as the fan-out itself.
        if fresh:
            self.position = fresh[-1].id
            self.on_dispatch(fresh[0].id)  # type: ignore[arg-type]

    # ----- what other processes add ------------------------------------------------------
    async def _read_forever(self) -> None:
        # BLOCK stays under the client's socket timeout (store/connect.py), so an idle log is
        # not an error.
        delay = 0.1
        waited = False
        while not self._stopping:
            try:
                if self.position is None:
                    self.position = await self.log.last_id()
                # A process that commits asks for one entry (see `committed`); one that has not
                # committed lately (a standby replica) takes a read's worth at once: one round
                # trip per batch of the log, not two.
                ingesting = time.monotonic() - self._committed_at < _INGESTING_FOR
                count = 1 if ingesting else _READ_COUNT
                found = xread_entries(await self.redis.xread(
                    {self.keys.events: str(self.position)}, count=count, block=2000))
                delay = 0.1
                if not found:
                    continue
                if not ingesting:
                    if await self._take(found[0][1]) == count:
                        await self._catch_up()
                    continue
                probed = EventId.of_entry(found[0][1][0][0])
                if probed <= self.position:
                    continue  # handed out meanwhile by `committed`
                if self._committing and not waited:
                    # Most likely this process's own commit, whose ids are on their way: wait
                    # for it, once (another process's entry may be what stops the hand-over).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._settled.wait(), 2.0)
                    waited = probed > self.position  # not handed out: read it next time
                    continue
                waited = False
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except (RedisError, RedisClusterException, OSError) as exc:
                if self._stopping:
                    return
                logger.warning("event log reader: %s; retrying in %.1fs", exc, delay)
                await refresh(self.redis)  # a cluster: the log's slot may have a new primary
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a bug must not end live fan-out: log it, go on after a pause
                logger.exception("event log reader failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _catch_up(self) -> None:
        """Reads and fans out everything after `position`, `_READ_COUNT` entries at a time."""
        while True:
            assert self.position is not None
            found = xread_entries(await self.redis.xread(
                {self.keys.events: str(self.position)}, count=_READ_COUNT))
            if await self._take(found[0][1] if found else []) < _READ_COUNT:
                return

    async def _take(self, read: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Fans out the entries of a read of the log that follow `position`; answers how many
        the read held."""
        assert self.position is not None
        position = self.position
        fresh = read if not read or EventId.of_entry(read[0][0]) > position else [
            (raw_id, fields) for raw_id, fields in read if EventId.of_entry(raw_id) > position]
        if fresh:
            if not self._all and not self._by_session:
                self._pass(EventId.of_entry(fresh[0][0]), EventId.of_entry(fresh[-1][0]))
            else:
                try:
                    parse = EntryReader()
                    await self._hand_out([parse(raw_id, fields) for raw_id, fields in fresh])
                except (RedisError, RedisClusterException, OSError):
                    raise
                except Exception:  # a bug must not end live fan-out: skip what was read
                    logger.exception("event log reader failed on a batch; skipping it")
                    self.position = EventId.of_entry(fresh[-1][0])
        return len(read)
