"""One reader of the Redis event log per relay process, fanning out to bounded client queues.

Clients never touch Redis for live events: the hub reads each entry of the global log once and
hands the same pre-encoded bytes to every subscriber whose filter matches. A subscriber of
every event gets it under the global log's id; a subscriber of one session gets it under that
session's own log id, with the id before it there (`prev`), both carried by the global entry
(store/log.py), so its replay (the session's log) and the live events join without gap or
double. A subscriber whose queue is full is dropped (it resumes with Last-Event-ID) so a slow
client never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from ..store.connect import refresh
from ..store.keys import Keys
from ..store.log import EventId, EventLog, Ref, parse_entry
from ..store.replies import Entry, xread_entries
from .sse import frame

logger = logging.getLogger("opencode_relay.fanout")


@dataclass(frozen=True)
class LiveEvent:
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
    session_id: str | None  # None: every event
    queue: asyncio.Queue[LiveEvent]
    accept: EventFilter | None = None
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False


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
        self.position: EventId | None = None

    @property
    def client_count(self) -> int:
        return len(self._all) + sum(len(s) for s in self._by_session.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._read_forever())

    async def stop(self) -> None:
        # The flag as well as the cancel: a cancel that lands inside redis-py's read can come
        # back as a connection error (or nothing), and the reader must end all the same.
        self._stopping = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def subscribe(self, session_id: str | None, accept: EventFilter | None = None) -> Subscriber:
        sub = Subscriber(session_id, asyncio.Queue(self.queue_size), accept)
        if self.closed:  # shutting down: the stream ends at once, the client goes elsewhere
            sub.closing = True
            sub.queue.put_nowait(CLOSE)
        if session_id is None:
            self._all.add(sub)
        else:
            self._by_session.setdefault(session_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
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
            try:
                sub.queue.put_nowait(CLOSE)
            except asyncio.QueueFull:
                sub.overflowed.set()

    def _deliver(self, sub: Subscriber, event: LiveEvent) -> None:
        if sub.overflowed.is_set():
            return
        try:
            sub.queue.put_nowait(event)
        except asyncio.QueueFull:
            sub.overflowed.set()
            self.on_drop()

    def dispatch(self, event_id: EventId, data: bytes, sessions: Sequence[str],
                 refs: Sequence[Ref] = (), hidden: bool = False) -> None:
        """Hands a global log entry to its subscribers: every-event ones (unless `hidden`)
        under `event_id`, each session's under its `refs` id there."""
        if not hidden and self._all:
            event = LiveEvent(event_id, frame(data, event_id=event_id))
            for sub in self._all:
                if sub.accept is None or sub.accept(sessions):
                    self._deliver(sub, event)
        for ref in refs:
            group = self._by_session.get(ref.session)
            if group:
                own = LiveEvent(ref.id, frame(data, event_id=ref.id), ref.prev)
                for sub in group:
                    self._deliver(sub, own)

    async def _prepare_filters(self, sessions: set[str]) -> None:
        filters = {id(sub.accept): sub.accept for sub in self._all if sub.accept is not None}
        for accept in filters.values():
            await accept.prepare(sessions)

    async def _read_forever(self) -> None:
        # BLOCK stays under the client's 5 s socket timeout, so an idle log is not an error.
        delay = 0.1
        while not self._stopping:
            found: list[tuple[bytes, list[Entry]]] = []
            try:
                if self.position is None:
                    self.position = await self.log.last_id()
                found = xread_entries(await self.redis.xread(
                    {self.keys.events: str(self.position)}, count=1000, block=2000))
                delay = 0.1
                for _stream, entries in found:
                    if not self._all and not self._by_session:
                        # Nobody listens here: keep the position, skip the work (a client that
                        # comes later replays what it missed from Redis).
                        self.position = EventId.parse(entries[-1][0])
                        self.on_dispatch(self.position)
                        continue
                    batch = [parse_entry(raw_id, fields) for raw_id, fields in entries]
                    await self._prepare_filters({s for e in batch for s in e.sessions})
                    for entry in batch:
                        assert entry.id is not None  # read back from the log
                        self.dispatch(entry.id, entry.data, entry.sessions, entry.refs,
                                      entry.hidden)
                        self.position = entry.id
                        self.on_dispatch(entry.id)
            except asyncio.CancelledError:
                raise
            except (RedisError, RedisClusterException, OSError) as exc:
                if self._stopping:
                    return
                logger.warning("event log reader: %s; retrying in %.1fs", exc, delay)
                await refresh(self.redis)  # a cluster: the log's slot may have a new primary
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a bug must not end live fan-out: skip what was read, go on
                logger.exception("event log reader failed on a batch; skipping it")
                for _stream, entries in found:
                    if entries:
                        self.position = EventId.parse(entries[-1][0])
                await asyncio.sleep(delay)
