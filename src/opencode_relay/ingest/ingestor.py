"""Consumes opencode's global event stream into Redis: state first, then the event log.

One batch of events is one Redis transaction, so a reader never sees half an event, and the
log position handed out with a read matches the state it came with.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from ..store.log import EventLog, LogEntry
from ..store.state import JSON, StateStore, dumps
from ..upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable
from .leader import Lease
from .routing import NOT_LOGGED, session_id_of
from .snapshot import (IDLE, SessionSnapshot, fetch_snapshot, pending_requests_by_session,
                       stage_snapshot)

logger = logging.getLogger("opencode_relay.ingest")

Handler = Callable[[Pipeline, JSON], Awaitable[None]]
_STREAM_END = object()


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
                 backlog_limit: int = 100_000,
                 on_event: Callable[[str], None] | None = None) -> None:
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
        self.part_cache_size = part_cache_size
        self.on_event = on_event or (lambda _type: None)
        self.connected = asyncio.Event()
        self.leading = False  # holds the ingest lease (another replica ingests otherwise)
        self.synced = asyncio.Event()
        self.reconnects = 0
        self._inbox: asyncio.Queue[Any] | None = None  # read from opencode, not yet written
        self._reader: asyncio.Task[None] | None = None
        self._parents: OrderedDict[str, str | None] = OrderedDict()  # bounded like _parts
        self._parts: OrderedDict[str, JSON] = OrderedDict()
        self._unlogged: list[LogEntry] = []  # staged for the log with the next flush
        self._dirty: set[str] = set()
        self._pipe: Pipeline | None = None
        self._handlers: dict[str, Handler] = {
            "session.created": self._on_session, "session.updated": self._on_session,
            "session.deleted": self._on_session_deleted,
            "session.status": self._on_status, "session.idle": self._on_idle,
            "session.diff": self._on_diff, "todo.updated": self._on_todos,
            "message.updated": self._on_message, "message.removed": self._on_message_removed,
            "message.part.updated": self._on_part, "message.part.delta": self._on_delta,
            "message.part.removed": self._on_part_removed,
            "permission.asked": self._on_request_asked, "question.asked": self._on_request_asked,
            "question.v2.asked": self._on_request_asked,
            "permission.replied": self._on_request_done, "question.replied": self._on_request_done,
            "question.rejected": self._on_request_done,
            "question.v2.replied": self._on_request_done,
            "question.v2.rejected": self._on_request_done,
        }

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
            except Exception:  # a bug must not stop ingestion for good: log it, reconnect
                logger.exception("ingest failed; reconnecting")
            self.connected.clear()
            self.synced.clear()
            self.reconnects += 1
            await asyncio.sleep(self.backoff.next_delay())

    async def _consume(self, events: AsyncIterator[JSON]) -> None:
        # Bounded: while Redis or a long reconcile holds the consumer up, reading pauses and
        # TCP pushes back on opencode instead of this process growing without limit.
        queue: asyncio.Queue[Any] = asyncio.Queue(self.backlog_limit)

        async def read() -> None:
            try:
                async for event in events:
                    await queue.put(event)
                await queue.put(_STREAM_END)
            except Exception as exc:  # handed to the consumer, which raises it
                await queue.put(exc)

        reader = asyncio.create_task(read())
        self._inbox, self._reader = queue, reader
        try:
            fresh_parts = await self.reconcile()
            self.backoff.reset()
            self.synced.set()
            # Nothing was consumed during reconcile, so an event's place in the backlog is the
            # number of events received before it. A delta received before its part's snapshot
            # was fetched is already in that snapshot.
            backlog = [queue.get_nowait() for _ in range(queue.qsize())]
            backlog = [e for place, e in enumerate(backlog)
                       if place >= fresh_parts.get(_delta_part(e) or "", -1)]
            if backlog:
                await self._apply_or_raise(backlog)
            while True:
                batch = [await queue.get()]
                while len(batch) < self.batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                await self._apply_or_raise(batch)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def drain(self, timeout: float = 5.0) -> None:
        """Shutdown: stops reading opencode, then waits until what was read is in Redis."""
        if self._reader is not None:
            self._reader.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and (self._pipe is not None or (
                self._inbox is not None and not self._inbox.empty())):
            await asyncio.sleep(0.02)

    async def _apply_or_raise(self, items: list[Any]) -> None:
        events = []
        for item in items:
            if item is _STREAM_END:
                await self.apply(events)
                raise UpstreamUnavailable("opencode closed its event stream")
            if isinstance(item, Exception):
                await self.apply(events)
                raise item
            events.append(item)
        await self.apply(events)

    # ----- reconcile ---------------------------------------------------------------------
    async def reconcile(self) -> dict[str, int]:
        """Brings Redis up to date with opencode.

        Returns the parts it rewrote, each with the number of upstream events received (and
        queued, unapplied) by the time its snapshot had been fetched."""
        upstream_sessions = await self.upstream.list_all_sessions()
        upstream_ids = {s["id"] for s in upstream_sessions}
        directories = {s.get("directory") for s in upstream_sessions}
        statuses: dict[str, JSON] = {}
        for directory in directories:
            statuses.update(await self.upstream.statuses(directory))
        requests = await pending_requests_by_session(self.upstream, directories)
        stored_ids = await self.store.list_session_ids()
        stored_raw = await self.store.get_sessions_raw([s["id"] for s in upstream_sessions])
        stored_infos = {info["id"]: info for info in map(json.loads, stored_raw)}
        stored_status = await self._stored_statuses(list(stored_infos))
        unstored = [s["id"] for s in upstream_sessions if s["id"] not in stored_infos]
        pruned_at = dict(zip(unstored, await self.redis.zmscore(self.store.keys.pruned, unstored)
                             if unstored else []))

        def stale(info: JSON) -> bool:
            stored = stored_infos.get(info["id"])
            if stored is None and pruned_at.get(info["id"]) is not None:
                # Pruned for idleness: only new activity brings it back (or a read-through).
                return int((info.get("time") or {}).get("updated") or 0) > pruned_at[info["id"]]
            return (stored is None or stored.get("time") != info.get("time")
                    or stored_status.get(info["id"], IDLE) != statuses.get(info["id"], IDLE)
                    or stored_status.get(info["id"], IDLE).get("type") != "idle")

        limit = asyncio.Semaphore(8)

        received_by: dict[str, int] = {}

        async def fetch(info: JSON) -> SessionSnapshot | None:
            async with limit:
                try:
                    snap = await fetch_snapshot(self.upstream, info, statuses.get(info["id"]),
                                                requests.get(info["id"], []))
                    received_by[info["id"]] = self._inbox.qsize() if self._inbox else 0
                    return snap
                except UpstreamError as exc:
                    if exc.status == 404:
                        return None  # deleted meanwhile; its session.deleted event follows
                    raise

        to_sync = [info for info in upstream_sessions if stale(info)]
        snapshots = [s for s in await asyncio.gather(*(fetch(i) for i in to_sync)) if s]
        fresh_parts: dict[str, int] = {}
        for snap in snapshots:
            self._remember_parent(snap.info["id"], snap.info.get("parentID"))
        for snap in snapshots:
            async with self._transaction() as pipe:
                await stage_snapshot(self.store, pipe, snap, self.name)
                await self._stage_log({"type": "relay.session.synced",
                                       "properties": {"sessionID": snap.info["id"]}})
            fresh_parts.update(dict.fromkeys(snap.part_ids, received_by[snap.info["id"]]))
        # Requests of sessions that were not stale may have changed too.
        synced_ids = {info["id"] for info in to_sync}
        for info in upstream_sessions:
            if info["id"] not in synced_ids:
                pipe = self.redis.pipeline(transaction=True)
                pipe.delete(self.store.keys.requests(info["id"]))
                for request in requests.get(info["id"], []):
                    self.store.put_request(pipe, info["id"], request)
                await pipe.execute()
        missing = sorted(set(stored_ids) - upstream_ids)
        recorded = await self.store.upstream_names(missing)
        for sid in missing:
            if recorded.get(sid, self.name if self.owns_unrecorded else None) == self.name:
                await self._remove_if_gone(sid)
        self._parts.clear()
        logger.info("reconciled with opencode: %d sessions, %d re-read",
                    len(upstream_sessions), len(snapshots))
        return fresh_parts

    async def _stored_statuses(self, sids: list[str]) -> dict[str, JSON]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.get(self.store.keys.status(sid))
            found = await pipe.execute()
        return {sid: json.loads(raw) for sid, raw in zip(sids, found) if raw is not None}

    async def _remove_if_gone(self, sid: str) -> None:
        info = await self.store.get_session(sid)
        try:
            await self.upstream.get_session(sid, (info or {}).get("directory"))
            return
        except UpstreamError as exc:
            if exc.status != 404:
                return
        async with self._transaction() as pipe:
            await self.store.stage_remove_session(pipe, sid, (info or {}).get("parentID"))
            await self._stage_log({"type": "relay.session.synced",
                                   "properties": {"sessionID": sid, "removed": True}},
                                  expire_session_log=True)

    # ----- applying events ---------------------------------------------------------------
    async def apply(self, events: list[JSON]) -> None:
        """Writes a batch of `{directory, payload}` events: state changes and log entries."""
        if not events:
            return
        async with self._transaction():
            await self._stage_batch(events)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Pipeline]:
        """Stages writes on `self._pipe` and commits them as one transaction on leaving.

        A failure leaves nothing half-staged behind for the next transaction."""
        self._pipe = self.redis.pipeline(transaction=True)
        try:
            yield self._pipe
            await self._flush()
        finally:
            self._pipe = None
            self._dirty.clear()
            self._unlogged = []

    async def _stage_batch(self, events: list[JSON]) -> None:
        assert self._pipe is not None
        for event in events:
            payload = event.get("payload") if isinstance(event, dict) else None
            if not isinstance(payload, dict):
                continue
            kind = payload.get("type")
            if kind in NOT_LOGGED:
                continue
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            props = payload.get("properties")
            if handler is not None and isinstance(props, dict):
                try:
                    await handler(self._pipe, props)
                except (KeyError, TypeError, AttributeError) as exc:
                    logger.warning("event %s had an unexpected shape (%s); logged only", kind, exc)
            await self._stage_log(payload,
                                  expire_session_log=kind == "session.deleted")
            self.on_event(str(kind))

    async def _stage_log(self, payload: JSON, expire_session_log: bool = False) -> None:
        sid = session_id_of(payload)
        lineage = await self._lineage(sid) if sid else ()
        data = dumps(payload)
        self._unlogged.append(LogEntry(None, data, lineage, expire_own_log=expire_session_log))

    async def _flush(self) -> None:
        """Commits what is staged, state and log entries together, as one transaction."""
        pipe = self._pipe
        assert pipe is not None
        for pid in self._dirty:
            if pid in self._parts:
                self.store.put_part(pipe, self._parts[pid])
        self._dirty.clear()
        if self._unlogged:
            await self.log.stage_append(pipe, self._unlogged)
            self._unlogged = []
        await pipe.execute()
        while len(self._parts) > self.part_cache_size:
            self._parts.popitem(last=False)

    async def _lineage(self, sid: str) -> tuple[str, ...]:
        chain: list[str] = []
        current: str | None = sid
        while current and current not in chain and len(chain) < 16:
            chain.append(current)
            current = await self._parent_of(current)
        return tuple(chain)

    async def _parent_of(self, sid: str) -> str | None:
        if sid not in self._parents:
            info = await self.store.get_session(sid)
            self._remember_parent(sid, (info or {}).get("parentID"))
        return self._parents[sid]

    def _remember_parent(self, sid: str, parent: str | None) -> None:
        self._parents[sid] = parent
        self._parents.move_to_end(sid)
        while len(self._parents) > self.part_cache_size * 10:
            self._parents.popitem(last=False)

    # ----- handlers, one per event type that changes state --------------------------------
    async def _on_session(self, pipe: Pipeline, props: JSON) -> None:
        info = props["info"]
        self._remember_parent(info["id"], info.get("parentID"))
        self.store.put_session(pipe, info, self.name)

    async def _on_session_deleted(self, pipe: Pipeline, props: JSON) -> None:
        info = props["info"]
        await self._flush()
        await self.store.stage_remove_session(pipe, info["id"], info.get("parentID"))

    async def _on_status(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_json(pipe, self.store.keys.status(props["sessionID"]), props["status"])

    async def _on_idle(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_json(pipe, self.store.keys.status(props["sessionID"]), IDLE)

    async def _on_diff(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_json(pipe, self.store.keys.diff(props["sessionID"]), props["diff"])

    async def _on_todos(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_json(pipe, self.store.keys.todos(props["sessionID"]), props["todos"])

    async def _on_message(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_message(pipe, props["info"])

    async def _on_message_removed(self, pipe: Pipeline, props: JSON) -> None:
        sid, mid = props["sessionID"], props["messageID"]
        await self._flush()
        pids = await self.store.part_ids(sid, mid)
        for pid in pids:
            self._parts.pop(pid, None)
        self.store.remove_message(pipe, sid, mid, pids)

    async def _on_part(self, pipe: Pipeline, props: JSON) -> None:
        part = props["part"]
        self._remember_part(part)

    async def _on_delta(self, pipe: Pipeline, props: JSON) -> None:
        pid, field = props["partID"], props["field"]
        part = self._parts.get(pid)
        if part is None:
            part = await self.store.get_part(props["sessionID"], pid)
            if part is None:
                return  # a delta for a part never seen: logged; the next snapshot has it
        current = part.get(field)
        part[field] = (current if isinstance(current, str) else "") + props["delta"]
        self._remember_part(part)

    async def _on_part_removed(self, pipe: Pipeline, props: JSON) -> None:
        pid = props["partID"]
        self._parts.pop(pid, None)
        self._dirty.discard(pid)
        self.store.remove_part(pipe, props["sessionID"], props["messageID"], pid)

    async def _on_request_asked(self, pipe: Pipeline, props: JSON) -> None:
        self.store.put_request(pipe, props["sessionID"], props)

    async def _on_request_done(self, pipe: Pipeline, props: JSON) -> None:
        self.store.remove_request(pipe, props["sessionID"], props["requestID"])

    def _remember_part(self, part: JSON) -> None:
        if not all(isinstance(part.get(k), str) for k in ("id", "sessionID", "messageID")):
            raise TypeError("a part needs string id, sessionID and messageID")
        self._parts[part["id"]] = part
        self._parts.move_to_end(part["id"])
        self._dirty.add(part["id"])


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
