"""One reader of the Redis event log per relay process, fanning out to bounded client queues.

Clients never touch Redis for live events: the hub reads each entry once and hands the same
pre-encoded bytes to every subscriber whose filter matches. A subscriber whose queue is full is
dropped (it resumes with Last-Event-ID) so a slow client never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..store.keys import Keys
from ..store.log import EventId, EventLog
from ..store.replies import Entry, xread_entries
from .sse import event_frame

logger = logging.getLogger("opencode_relay.fanout")


@dataclass(frozen=True)
class LiveEvent:
    id: EventId
    frame: bytes  # the SSE frame, ready to send


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

    def dispatch(self, event_id: EventId, data: bytes, sessions: list[str],
                 raw_id: bytes | None = None) -> None:
        event = LiveEvent(event_id, event_frame(data, raw_id or str(event_id).encode()))
        for sub in self._all:
            if sub.accept is None or sub.accept(sessions):
                self._deliver(sub, event)
        for sid in sessions:
            for sub in self._by_session.get(sid, ()):
                self._deliver(sub, event)

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
                        self.on_dispatch(EventId.of_entry(entries[0][0]))
                        continue
                    batch = [(raw_id, fields[b"e"], fields.get(b"s", b"").decode().split())
                             for raw_id, fields in entries]
                    if self._all:
                        await self._prepare_filters({s for _i, _d, ss in batch for s in ss})
                    for raw_id, data, sessions in batch:
                        event_id = EventId.of_entry(raw_id)
                        self.dispatch(event_id, data, sessions, raw_id)
                        self.position = event_id
                    # Once per read, for its oldest entry (the one that waited longest): per
                    # event, the histogram cost as much as the fan-out itself.
                    self.on_dispatch(EventId.of_entry(batch[0][0]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                logger.warning("event log reader: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a bug must not end live fan-out: skip what was read, go on
                logger.exception("event log reader failed on a batch; skipping it")
                for _stream, entries in found:
                    if entries:
                        self.position = EventId.parse(entries[-1][0])
                await asyncio.sleep(delay)
