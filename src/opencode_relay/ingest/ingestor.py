"""Consumes opencode's global event stream into Redis: state first, then the event log.

One batch of events is one transaction per session it touches (its state and its log, in its
hash slot), so a reader never sees half an event, and the session-log position handed out with
a read matches the state it came with. The global log follows in a publish step (store/log.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .. import events as event_types
from ..store.connect import refresh
from ..store.log import EventLog, new_entry
from ..store.staging import Staging
from ..store.state import JSON, StateStore, dumps
from ..upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable
from .batch import Batch
from .durable import SequenceRecorder, replayed_already
from .file_signal import FileSignal
from .leader import Lease
from .reconcile import IngestPath, Reconciled, Reconciler
from .routing import NOT_LOGGED, session_id_of
from .snapshot import IDLE

logger = logging.getLogger("opencode_relay.ingest")

Handler = Callable[[Batch, JSON], Awaitable[None]]
_STREAM_END = object()
_MAX_DEPTH = 16  # sub-agent nesting followed when routing an event to its ancestors' streams

# The inbox holds network reads, each a list of events; a read of opencode's stream (64 KiB at
# most) holds a few hundred. Bounds the backlog in reads: `backlog_limit` events at about this.
_EVENTS_PER_READ = 100
_STAGE_SLICE = 100  # events staged between two chances for the commit in flight to finish
# A batch holds at most `batch_size` log entries; a run of text deltas is one, however long
# (Batch.add_delta), so the burst of an answer that came during a commit is one batch, not one
# per `batch_size` deltas, each waiting for the last. At most this many events per entry: a
# delta costs about a microsecond to stage, so a batch is staged in a few milliseconds.
_EVENTS_PER_ENTRY = 8
_FIND = "\0find"  # _stage_log: the caller has not worked out the event's session


class Backoff:
    """Capped exponential backoff with full jitter."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap, self.attempt = initial, cap, 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return random.uniform(delay / 2, delay)


class Ingestor:
    def __init__(self, redis: Redis, upstream: OpencodeClient, store: StateStore, log: EventLog,
                 *, name: str = "default", owns_unrecorded: bool = True,
                 reconnect_initial: float = 0.25, reconnect_max: float = 15.0,
                 batch_size: int = 500, part_cache_size: int = 5000,
                 backlog_limit: int = 100_000, split: bool | None = None,
                 on_event: Callable[[str, int], None] | None = None,
                 observers: Sequence[Callable[[JSON], None]] = (),
                 after_commit: Callable[[], Awaitable[object]] | None = None) -> None:
        self.redis = redis
        self.upstream = upstream
        # Which opencode server this ingests; sessions with no server recorded count as ours
        # only for the default server (they predate the record).
        self.name = name
        self.owns_unrecorded = owns_unrecorded
        self.store = store
        self.log = log
        self.backoff = Backoff(reconnect_initial, reconnect_max)
        self.batch_size = batch_size
        self.backlog_limit = backlog_limit
        self.split = split  # one transaction per slot (default: on a cluster only)
        self._marked: set[str] = set()  # sessions in our `unpublished` set (store/log.py)
        self.on_event = on_event or (lambda _type, _count: None)
        # Hear every ingested `{directory, payload}` event but text deltas once it is in Redis
        # (retry_guard, push).
        self.observers = tuple(observers)
        # Awaited after each committed batch, before the next (store/replication.ReplicaWait).
        self.after_commit = after_commit
        self.connected = asyncio.Event()
        self.leading = False  # holds the ingest lease (another replica ingests otherwise)
        self.synced = asyncio.Event()
        self.reconnects = 0
        self.replayed = 0  # durable events replayed from opencode's history after a (re)connect
        self.sequence = SequenceRecorder()
        self._inbox: asyncio.Queue[Any] | None = None  # read from opencode, not yet written
        self._received = 0  # events read from opencode on this connection
        self._reader: asyncio.Task[None] | None = None
        # The latest version of recently changed parts, so a delta needs no read; and the
        # parent of each session seen, for routing events to ancestors' streams.
        self._parts: LRUCache[str, JSON] = LRUCache(maxsize=part_cache_size)
        self._parents: LRUCache[str, str | None] = LRUCache(maxsize=part_cache_size * 10)
        self._lineages: dict[str, tuple[str, ...]] = {}  # from _parents; emptied when it changes
        self._batch: Batch | None = None  # the transaction being staged, if any
        # The batch being committed while `_consume` reads and stages the next one.
        self._committing: asyncio.Task[None] | None = None
        self.file_signal = FileSignal()  # which sessions hear of file changes
        self._handlers = self._handler_table()

    def _handler_table(self) -> dict[str, Handler]:
        """The handler of each event type that changes stored state (events.STATEFUL)."""
        table: dict[str, Handler] = {
            event_types.SESSION_DELETED: self._on_session_deleted,
            event_types.SESSION_STATUS_CHANGED: self._on_status,
            event_types.SESSION_IDLE: self._on_idle,
            event_types.SESSION_DIFF: self._on_diff,
            event_types.TODOS: self._on_todos,
            event_types.MESSAGE_UPDATED: self._on_message,
            event_types.MESSAGE_REMOVED: self._on_message_removed,
            event_types.PART_UPDATED: self._on_part,
            event_types.PART_DELTA: self._on_delta,
            event_types.PART_REMOVED: self._on_part_removed,
        }
        table.update(dict.fromkeys(event_types.SESSION_INFO, self._on_session))
        table.update(dict.fromkeys(event_types.REQUEST_ASKED, self._on_request_asked))
        table.update(dict.fromkeys(event_types.REQUEST_DONE, self._on_request_done))
        return table

    # ----- lifecycle ---------------------------------------------------------------------
    async def run_with_lease(self, lease: Lease) -> None:
        """Ingests while holding the lease; waits for it otherwise. Runs until cancelled."""
        while True:
            try:
                if await lease.acquire():
                    self.leading = True
                    work = asyncio.create_task(self.run())
                    try:
                        while not work.done():
                            await asyncio.sleep(lease.renew_every)
                            if not await lease.renew():
                                logger.warning("lost the ingest lease; another relay ingests now")
                                break
                    finally:
                        work.cancel()
                        await asyncio.gather(work, return_exceptions=True)
                        self.connected.clear()
                        self.leading = False
                else:
                    await asyncio.sleep(lease.renew_every)
            except RedisError as exc:
                logger.warning("redis unavailable for the ingest lease: %s", exc)
                await refresh(self.redis)  # a cluster: the lease's slot may have a new primary
                await asyncio.sleep(self.backoff.next_delay())

    @property
    def state(self) -> str:
        if self.connected.is_set():
            return "connected" if self.synced.is_set() else "syncing"
        return "reconnecting" if self.leading else "standby"

    async def run(self) -> None:
        """Reads opencode's events forever, reconnecting with backoff."""
        while True:
            try:
                async with self.upstream.global_events() as events:
                    self.connected.set()
                    logger.info("connected to opencode's event stream")
                    await self._consume(events)
            except (UpstreamUnavailable, UpstreamError) as exc:
                logger.warning("opencode event stream: %s", exc)
            except RedisError as exc:
                logger.warning("redis error while ingesting: %s", exc)
                await refresh(self.redis)
            except Exception:  # a bug must not stop ingestion for good: log it, reconnect
                logger.exception("ingest failed; reconnecting")
            self.connected.clear()
            self.synced.clear()
            self.reconnects += 1
            await asyncio.sleep(self.backoff.next_delay())

    async def _consume(self, events: AsyncIterator[list[JSON]]) -> None:
        # Bounded: while Redis or a long reconcile holds the consumer up, reading pauses and
        # TCP pushes back on opencode instead of this process growing without limit.
        queue: asyncio.Queue[Any] = asyncio.Queue(max(1, self.backlog_limit // _EVENTS_PER_READ))
        self._received = 0
        # Once in sync, the next read waits until the consumer has written what it has: opencode
        # writes each event on its own, and reading them one by one while a batch commits would
        # cost a read (tens of µs of HTTP parsing) per event. Meanwhile they gather in the
        # socket, and one read takes them all in: a batch is what came during the last commit.
        # During reconcile every read is queued at once (its count places backlog deltas).
        idle = asyncio.Event()

        async def read() -> None:
            try:
                async for found in events:
                    self._received += len(found)
                    await queue.put(found)
                    if self.synced.is_set():
                        await idle.wait()
                await queue.put(_STREAM_END)
            except Exception as exc:  # handed to the consumer, which raises it
                await queue.put(exc)

        reader = asyncio.create_task(read())
        self._inbox, self._reader = queue, reader
        try:
            # What a previous ingester of this server committed but did not publish (it died
            # between the two steps) goes to the global log before anything new.
            self._marked.clear()
            await self.log.repair(self.name)
            reconciled = await self.reconcile()
            self.backoff.reset()
            self.synced.set()
            # Nothing was consumed during reconcile, so an event's place (counted from the
            # connection's first) is the number of events received before it. A delta received
            # before its part's snapshot was fetched is already in that snapshot; a durable event
            # (or its record) received by the end of the replay and replayed is in the log
            # already. The count goes on past the backlog: a read that waited for room in the
            # inbox was received, and counted, before the snapshots too.
            fresh_parts, replayed = reconciled.fresh_parts, reconciled.replayed
            horizon = max(max(fresh_parts.values(), default=0),
                          self._received if replayed else 0)
            placed = 0

            def fresh(items: list[Any]) -> list[Any]:
                nonlocal placed
                start, placed = placed, placed + len(items)
                if start >= horizon:
                    return items
                return [e for place, e in enumerate(items, start)
                        if place >= fresh_parts.get(_delta_part(e) or "", -1)
                        and not (place < horizon and replayed_already(e, replayed))]

            backlog = fresh(_flat([queue.get_nowait() for _ in range(queue.qsize())]))
            if backlog:
                await self._apply_or_raise(backlog)
            while True:
                # A batch is whatever has been read meanwhile (at least one read, then whole
                # reads while they fit in a batch): nothing waits for a batch to fill, and a
                # burst is written in few transactions. What is more than a batch (a burst
                # that came during a commit) is cut by `_stage`, so that Redis runs one part
                # while the next is staged, and the first events are out before the last are
                # staged.
                if queue.empty():
                    idle.set()
                reads = [await self._next_read(queue)]
                idle.clear()
                size = _size(reads[0])
                while size < self.batch_size * _EVENTS_PER_ENTRY and not queue.empty():
                    reads.append(queue.get_nowait())
                    size += _size(reads[-1])
                await self._apply_or_raise(fresh(_flat(reads)), in_turn=True)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if self._committing is not None:  # cancelled mid-commit: the next ingester replays
                self._committing.cancel()
                await asyncio.gather(self._committing, return_exceptions=True)
                self._committing = None

    async def _next_read(self, queue: asyncio.Queue[Any]) -> Any:
        """The next read of opencode's stream; raises at once if the batch being committed
        meanwhile fails (its events must be replayed: the caller reconnects)."""
        committing = self._committing
        if committing is None or not queue.empty():
            return await queue.get()
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, committing}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                await self._committed()
            return await getter
        finally:
            if not getter.done():
                getter.cancel()

    async def drain(self, timeout: float = 5.0) -> None:
        """Shutdown: stops reading opencode, then waits until what was read is in Redis."""
        if self._reader is not None:
            self._reader.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # No event marks "batch applied and inbox empty"; a short poll up to the deadline.
        while loop.time() < deadline and (  # noqa: ASYNC110
                self._batch is not None or (self._inbox is not None and not self._inbox.empty())
                or (self._committing is not None and not self._committing.done())):
            await asyncio.sleep(0.02)

    async def _apply_or_raise(self, items: list[Any], in_turn: bool = False) -> None:
        events: list[JSON] = []
        for item in items:
            if item is _STREAM_END:
                await self.apply(events)
                raise UpstreamUnavailable("opencode closed its event stream")
            if isinstance(item, Exception):
                await self.apply(events)
                raise item
            events.append(item)
        await (self._apply_in_turn(events) if in_turn else self.apply(events))

    # ----- reconcile (ingest/reconcile.py) -----------------------------------------------
    async def reconcile(self) -> Reconciled:
        """Brings Redis up to date with opencode: once per connection, before its events are
        applied (ingest/reconcile.py)."""
        ingest_path = IngestPath(
            apply=self.apply, transaction=self._transaction, stage_log=self._stage_log,
            remember_parent=self._remember_parent, received=lambda: self._received,
            clear_part_cache=self._parts.clear, count_replayed=self._count_replayed)
        reconciler = Reconciler(self.redis, self.upstream, self.store, ingest_path, name=self.name,
                                owns_unrecorded=self.owns_unrecorded, batch_size=self.batch_size,
                                sequence=self.sequence, file_signal=self.file_signal)
        return await reconciler.reconcile()

    def _count_replayed(self, count: int) -> None:
        self.replayed += count

    # ----- applying events ---------------------------------------------------------------
    async def apply(self, events: list[JSON]) -> None:
        """Writes `{directory, payload}` events, state changes and log entries, one
        transaction per batch (after the batch being committed, if any), and waits for it."""
        await self._committed()
        start = 0
        while start < len(events):
            batch, start = await self._stage(events, start)
            if batch is not None:
                await self._commit(batch)

    async def _apply_in_turn(self, events: list[JSON]) -> None:
        """`apply`, without waiting for the last commit: the next batch is read and staged
        while Redis runs this one. Batches commit one after another, in order; staging reads
        Redis only after the batch in flight is in (`_committed`), so it reads what that
        wrote."""
        start = 0
        while start < len(events):
            batch, start = await self._stage(events, start)
            try:
                await self._committed()
            except BaseException:
                if batch is not None:
                    await batch.stage.reset()
                raise
            if batch is not None:
                self._committing = asyncio.create_task(self._commit(batch))
                # The commit runs up to its wait for Redis's reply (its transaction sent)
                # before the next batch is staged: else Redis would wait for that staging.
                await asyncio.sleep(0)

    async def _committed(self) -> None:
        """Waits for the batch being committed, if any; raises what its commit raised."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _stage(self, events: list[JSON], start: int = 0) -> tuple[Batch | None, int]:
        """Stages a batch of `events` from `start` on (nothing is sent yet): until it holds
        `batch_size` log entries, or `_EVENTS_PER_ENTRY` times as many events. Answers the
        batch (None when none of its events is logged) and where the next one starts."""
        end = min(len(events), start + self.batch_size * _EVENTS_PER_ENTRY)
        places: list[int] = []
        payloads: list[JSON] = []
        for place in range(start, end):
            event = events[place]
            payload = event.get("payload") if isinstance(event, dict) else None
            if isinstance(payload, dict) and payload.get("type") not in NOT_LOGGED:
                places.append(place)
                payloads.append(payload)
        if not payloads:
            return None, end
        sessions = [session_id_of(payload) for payload in payloads]
        async with self._staging() as batch:
            await self._warm_parents({sid for sid in sessions if sid})
            deltas = 0
            for staged, (payload, sid) in enumerate(zip(payloads, sessions, strict=True), 1):
                if self._staged_delta(batch, payload, sid):
                    deltas += 1
                else:
                    batch.kinds[await self._stage_event(batch, payload, sid)] += 1
                if not staged % _STAGE_SLICE:
                    if len(batch.log) >= self.batch_size and staged < len(payloads):
                        end = places[staged]  # the next batch starts at the next logged event
                        payloads = payloads[:staged]
                        break
                    if self._committing is not None:
                        # The batch in flight is handed out to clients as soon as Redis
                        # answers, not after this whole batch is staged.
                        await asyncio.sleep(0)
            if deltas:
                batch.kinds[event_types.PART_DELTA] += deltas
            # What the observers and the file signal hear: every event but text deltas (most
            # of a stream, and none of them says anything those need).
            heard = [e for e in events[start:end] if isinstance(e, dict)
                     and isinstance(e.get("payload"), dict)
                     and e["payload"].get("type") != event_types.PART_DELTA]
            for notice in self.file_signal.notices(heard):
                await self._stage_log(batch, notice)
            self.sequence.stage(batch.stage, self.store.keys, payloads, batch.session_removed)
            batch.events = heard
        return batch, end

    @asynccontextmanager
    async def _staging(self) -> AsyncIterator[Batch]:
        """A batch to stage writes on; on leaving, its changed parts and search hints are
        staged too, ready to commit. A failure stages nothing."""
        batch = self._batch = Batch(Staging(self.redis, self.split))
        try:
            yield batch
            batch.finish()
            for part in batch.parts.values():
                self.store.put_part(batch.stage.on(part["sessionID"]), part)
            if batch.hints and self.store.search is not None:
                await self.store.search.stage_hints(batch.stage.indexes, batch.hints)
        except BaseException:
            batch.join_texts()  # the cached parts hold what was staged, as before a failure
            await batch.stage.reset()
            raise
        finally:
            self._batch = None

    async def _commit(self, batch: Batch) -> None:
        """Commits a staged batch: one transaction per session's slot, then the global
        indexes, then the publish to the global log (store/log.py); then tells the observers.

        Changed parts and the log entries go last; a failure before the commit commits nothing.
        Sessions are marked as possibly unpublished before their first commit (`repair`)."""
        try:
            await self.log.commit(batch.stage, batch.log, self.name, self._marked)
            if self.after_commit is not None:
                await self.after_commit()
        finally:
            await batch.stage.reset()
        for kind, count in batch.kinds.items():
            self.on_event(kind, count)
        for observe in self.observers:
            for event in batch.events:
                try:
                    observe(event)
                except Exception:  # an observer's bug must not stop ingestion
                    logger.exception("an ingest observer failed")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Batch]:
        """A batch to stage writes on, committed on leaving (after the one in flight)."""
        await self._committed()
        async with self._staging() as batch:
            yield batch
        await self._commit(batch)

    def _staged_delta(self, batch: Batch, payload: JSON, sid: str | None) -> bool:
        """Stages a text delta (most of a stream) at once when nothing about it needs a read:
        its part and its session's lineage are known. False: `_stage_event` takes it."""
        if payload.get("type") != event_types.PART_DELTA or sid is None:
            return False
        props = payload.get("properties")
        if not isinstance(props, dict):
            return False
        if batch.extend_last_run(props):
            return True
        lineage = self._lineages.get(sid)
        if lineage is None:
            return False
        try:
            part = self._part_for_delta(batch, props)
        except (KeyError, TypeError):
            return False  # `_stage_event` logs it as it is, with a warning
        if part is None:
            return False
        batch.add_delta(payload, part, props["field"], props["delta"], lineage)
        return True

    async def _stage_event(self, batch: Batch, payload: JSON, sid: str | None) -> str:
        """Stages one event (its state change, then its log entry); answers its type."""
        kind = payload.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        props = payload.get("properties")
        if handler is not None and isinstance(props, dict):
            try:
                await handler(batch, props)
            except (KeyError, TypeError, AttributeError) as exc:
                logger.warning("event %s had an unexpected shape (%s); logged only", kind, exc)
        await self._stage_log(batch, payload,
                              expire_session_log=kind == event_types.SESSION_DELETED, sid=sid)
        return str(kind)

    async def _stage_log(self, batch: Batch, payload: JSON, expire_session_log: bool = False,
                         sid: str | None = _FIND) -> None:
        """Stages the log entry of `payload`, an event about session `sid` (session_id_of's
        answer, when the caller has it already)."""
        if sid == _FIND:
            sid = session_id_of(payload)
        if not sid:
            lineage: tuple[str, ...] = ()
        else:
            found = self._lineages.get(sid)
            lineage = found if found is not None else await self._lineage(sid)
        batch.add_entry(new_entry(dumps(payload), lineage, expire_session_log))

    async def _lineage(self, sid: str) -> tuple[str, ...]:
        """The session and its ancestors, nearest first (kept until a parent changes)."""
        chain: list[str] = []
        current: str | None = sid
        while current and current not in chain and len(chain) < _MAX_DEPTH:
            chain.append(current)
            current = await self._parent_of(current)
        if len(self._lineages) >= self._parents.maxsize:
            self._lineages.clear()
        lineage = self._lineages[sid] = tuple(chain)
        return lineage

    async def _parent_of(self, sid: str) -> str | None:
        if sid not in self._parents:
            await self._warm_parents([sid])
        return self._parents.get(sid)

    async def _warm_parents(self, sids: Iterable[str]) -> None:
        """Caches the ancestors of sessions not cached yet: one read per generation."""
        todo = {sid for sid in sids if sid not in self._parents}
        for _ in range(_MAX_DEPTH):
            if not todo:
                return
            await self._committed()  # what the batch in flight writes is read back
            found = await self.store.parent_ids(sorted(todo))
            for sid, parent in found.items():
                self._remember_parent(sid, parent)
            todo = {parent for parent in found.values() if parent and parent not in self._parents}

    def _remember_parent(self, sid: str, parent: str | None) -> None:
        if sid not in self._parents or self._parents[sid] != parent:
            self._lineages.clear()
        self._parents[sid] = parent

    # ----- handlers, one per event type that changes state --------------------------------
    async def _on_session(self, batch: Batch, props: JSON) -> None:
        info = props["info"]
        self._remember_parent(info["id"], info.get("parentID"))
        self.store.put_session(batch.stage, info, self.name)

    async def _on_session_deleted(self, batch: Batch, props: JSON) -> None:
        sid = props["info"]["id"]
        self._forget_parts(batch, lambda part: part["sessionID"] == sid)
        batch.mark_removed(sid)
        await self.store.stage_remove_session(batch.stage, sid, props["info"].get("parentID"))

    async def _on_status(self, batch: Batch, props: JSON) -> None:
        sid = props["sessionID"]
        self.store.put_json(batch.stage.on(sid), self.store.keys.status(sid), props["status"])

    async def _on_idle(self, batch: Batch, props: JSON) -> None:
        sid = props["sessionID"]
        self.store.put_json(batch.stage.on(sid), self.store.keys.status(sid), IDLE)

    async def _on_diff(self, batch: Batch, props: JSON) -> None:
        sid = props["sessionID"]
        self.store.put_json(batch.stage.on(sid), self.store.keys.diff(sid), props["diff"])

    async def _on_todos(self, batch: Batch, props: JSON) -> None:
        sid = props["sessionID"]
        self.store.put_json(batch.stage.on(sid), self.store.keys.todos(sid), props["todos"])

    async def _on_message(self, batch: Batch, props: JSON) -> None:
        self.store.put_message(batch.stage, props["info"])
        await self.store.stage_usage(batch.stage.on(props["info"]["sessionID"]), props["info"])

    async def _on_message_removed(self, batch: Batch, props: JSON) -> None:
        sid, mid = props["sessionID"], props["messageID"]
        self._forget_parts(batch, lambda part: part["messageID"] == mid)
        batch.mark_removed(sid, mid)
        await self.store.stage_remove_message(batch.stage, sid, mid)

    async def _on_part(self, batch: Batch, props: JSON) -> None:
        self._remember_part(batch, props["part"])
        if self.store.search is not None:  # an update, not a delta: the part's text as sent
            self.store.search.stage_part(batch.stage, props["part"], hints=batch.hints)

    async def _on_delta(self, batch: Batch, props: JSON) -> None:
        part = self._part_for_delta(batch, props)
        if part is None:
            sid, mid, pid = props["sessionID"], props["messageID"], props["partID"]
            if batch.removed(sid, mid, pid):
                return  # removed earlier in this batch (Redis has it until the commit)
            await self._committed()  # what the batch in flight writes is read back
            part = await self.store.get_part(sid, pid)
            if part is None:
                return  # a delta for a part never seen: logged; the next snapshot has it
            self._remember_part(batch, part)
        batch.append_text(part, props["field"], props["delta"])

    def _part_for_delta(self, batch: Batch, props: JSON) -> JSON | None:
        """The part a delta adds to when it is at hand (changed in this batch, or cached, and
        then marked changed); None when it must be read first. Raises TypeError or KeyError on
        a delta of another shape, before changing anything."""
        pid, field, delta = props["partID"], props["field"], props["delta"]
        if not (isinstance(pid, str) and isinstance(field, str) and isinstance(delta, str)):
            raise TypeError("a delta's part, field and text must be strings")
        part = batch.parts.get(pid)
        if part is None:  # its first change in this batch
            part = self._parts.get(pid)
            if part is not None:
                self._remember_part(batch, part)
        return part

    async def _on_part_removed(self, batch: Batch, props: JSON) -> None:
        sid, mid, pid = props["sessionID"], props["messageID"], props["partID"]
        self._forget_parts(batch, lambda part: part["id"] == pid)
        batch.mark_removed(sid, mid, pid)
        self.store.remove_part(batch.stage.on(sid), sid, mid, pid)

    async def _on_request_asked(self, batch: Batch, props: JSON) -> None:
        self.store.put_request(batch.stage.on(props["sessionID"]), props["sessionID"], props)

    async def _on_request_done(self, batch: Batch, props: JSON) -> None:
        sid = props["sessionID"]
        self.store.remove_request(batch.stage.on(sid), sid, props["requestID"])

    def _remember_part(self, batch: Batch, part: JSON) -> None:
        if not all(isinstance(part.get(k), str) for k in ("id", "sessionID", "messageID")):
            raise TypeError("a part needs string id, sessionID and messageID")
        self._parts[part["id"]] = part
        batch.change_part(part)

    def _forget_parts(self, batch: Batch, removed: Callable[[JSON], bool]) -> None:
        """Drops the parts a removal takes away from the cache and from the batch.

        A scan of the cache: removals are rare, and a stale cached part would come back with
        its next delta."""
        for pid in [pid for pid, part in self._parts.items() if removed(part)]:
            del self._parts[pid]
        batch.drop_parts(removed)


def _size(item: Any) -> int:
    return len(item) if isinstance(item, list) else 1


def _flat(items: list[Any]) -> list[Any]:
    """The inbox's reads (lists of events) and markers (stream end, errors) as one list."""
    flat: list[Any] = []
    for item in items:
        if isinstance(item, list):
            flat += item
        else:
            flat.append(item)
    return flat


def _delta_part(item: Any) -> str | None:
    """The part a queued `message.part.delta` event extends, if it is one."""
    if not isinstance(item, dict):
        return None
    payload = item.get("payload")
    if not isinstance(payload, dict) or payload.get("type") != "message.part.delta":
        return None
    props = payload.get("properties")
    part = props.get("partID") if isinstance(props, dict) else None
    return part if isinstance(part, str) else None
