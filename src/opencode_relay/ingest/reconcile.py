"""Reconcile on connect: brings Redis up to date with opencode before the live stream is applied.

After every (re)connect the ingestor builds a `Reconciler` and runs it once. It replays from
opencode's durable history what the streams missed (ingest/durable.py), re-reads the snapshot of
each session that may have changed otherwise (ingest/snapshot.py), refreshes pending requests,
and removes the sessions opencode no longer has. It writes through the ingestor's own path
(`IngestPath`: batches, transactions, log entries), so a replayed event is stored and logged as
a live one is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from .. import events as event_types
from ..store.connect import transaction
from ..store.state import JSON, StateStore
from ..upstream.client import OpencodeClient, UpstreamError
from .batch import Batch
from .durable import Cursor, DurableEvent, SequenceRecorder, read_cursors, replay
from .file_signal import FileSignal
from .snapshot import (
    IDLE,
    SessionSnapshot,
    fetch_snapshot,
    pending_requests_by_session,
    stage_snapshot,
    status_events,
)

logger = logging.getLogger("opencode_relay.ingest")

_BEYOND = 2**53 - 1  # a sequence number past any session's history (opencode counts in doubles)


@dataclass
class Reconciled:
    """What a reconcile rewrote, for the events read from opencode meanwhile."""

    # Parts rewritten from a snapshot, each with the number of events received (queued,
    # unapplied) by the time it was fetched.
    fresh_parts: dict[str, int] = field(default_factory=dict)
    replayed: set[str] = field(default_factory=set)  # ids of durable events replayed


class StageLog(Protocol):
    def __call__(self, batch: Batch, payload: JSON, expire_session_log: bool = False,
                 ) -> Awaitable[None]: ...


@dataclass(frozen=True)
class IngestPath:
    """What a reconcile uses of the ingestor (ingest/ingestor.py) that reads the stream."""

    # Writes a batch of `{directory, payload}` events (state and log) and waits for its commit.
    apply: Callable[[list[JSON]], Awaitable[None]]
    # A batch to stage writes on, committed on leaving (after the batch in flight).
    transaction: Callable[[], AbstractAsyncContextManager[Batch]]
    stage_log: StageLog  # stages an event's log entry on a batch
    remember_parent: Callable[[str, str | None], None]  # a session's parent, for routing
    received: Callable[[], int]  # events read from opencode on this connection so far
    clear_part_cache: Callable[[], None]  # the cached parts may be older than the snapshots
    count_replayed: Callable[[int], None]  # adds to the count of durable events replayed


class Reconciler:
    """One reconcile of the ingestor's server (`name`) with opencode, run on a connection
    before its events are applied."""

    def __init__(self, redis: Redis, upstream: OpencodeClient, store: StateStore,
                 ingest: IngestPath, *, name: str, owns_unrecorded: bool, batch_size: int,
                 sequence: SequenceRecorder, file_signal: FileSignal) -> None:
        self.redis = redis
        self.upstream = upstream
        self.store = store
        self.ingest = ingest
        # Sessions with no server recorded count as this server's only if it owns them
        # (the default server: they predate the record).
        self.name = name
        self.owns_unrecorded = owns_unrecorded
        self.batch_size = batch_size  # events per batch of a replay
        self.sequence = sequence
        self.file_signal = file_signal

    async def reconcile(self) -> Reconciled:
        """Brings Redis up to date with opencode.

        Every stored session whose sequence is recorded gets the durable events it missed
        replayed from opencode's history (opencode says which sessions moved: it sends only
        events after each one's sequence); each session that may have changed otherwise too
        then gets its snapshot, and its status if that changed. So no stream misses anything
        durable, and none sees it twice."""
        self.sequence.forget()
        upstream_sessions = await self.upstream.list_all_sessions()
        upstream_ids = {s["id"] for s in upstream_sessions}
        directories = {s.get("directory") for s in upstream_sessions}
        statuses: dict[str, JSON] = {}
        busy: dict[str, list[str]] = {}
        for directory in directories:
            found = await self.upstream.statuses(directory)
            statuses.update(found)
            if isinstance(directory, str):
                busy[directory] = [sid for sid, status in found.items()
                                   if status.get("type") != "idle"]
        self.file_signal.reset(busy)
        requests = await pending_requests_by_session(self.upstream, directories)
        stored_ids = await self.store.list_session_ids()
        stored_raw = await self.store.get_sessions_raw([s["id"] for s in upstream_sessions])
        stored_infos = {info["id"]: info for info in map(json.loads, stored_raw)}
        stored_status = await self._stored_statuses(list(stored_infos))
        unstored = [s["id"] for s in upstream_sessions if s["id"] not in stored_infos]
        scores: list[float | None] = (
            await self.redis.zmscore(self.store.keys.pruned, unstored) if unstored else [])
        pruned_at: dict[str, float | None] = dict(zip(unstored, scores, strict=True))

        def stale(info: JSON) -> bool:
            stored = stored_infos.get(info["id"])
            pruned = pruned_at.get(info["id"])
            if stored is None and pruned is not None:
                # Pruned for idleness: only new activity brings it back (or a read-through).
                return int((info.get("time") or {}).get("updated") or 0) > pruned
            return bool(stored is None or stored.get("time") != info.get("time")
                        or stored_status.get(info["id"], IDLE) != statuses.get(info["id"], IDLE)
                        or stored_status.get(info["id"], IDLE).get("type") != "idle")

        limit = asyncio.Semaphore(8)

        received_by: dict[str, int] = {}

        async def fetch(info: JSON) -> SessionSnapshot | None:
            async with limit:
                try:
                    snap = await fetch_snapshot(self.upstream, info, statuses.get(info["id"]),
                                                requests.get(info["id"], []))
                    received_by[info["id"]] = self.ingest.received()
                    return snap
                except UpstreamError as exc:
                    if exc.status == 404:
                        return None  # deleted meanwhile; its session.deleted event follows
                    raise

        to_sync = [info for info in upstream_sessions if stale(info)]
        # History first: a snapshot fetched after it holds at least what it replays.
        cursors, history = await self._missed_history(list(stored_infos), upstream_ids)
        snapshots = [s for s in await asyncio.gather(*(fetch(i) for i in to_sync)) if s]
        done = Reconciled()
        for snap in snapshots:
            self.ingest.remember_parent(snap.info["id"], snap.info.get("parentID"))
        for snap in snapshots:
            sid, directory = snap.info["id"], snap.info.get("directory")
            if sid in history:
                done.replayed |= await self._replay(sid, directory, cursors[sid], history[sid])
            async with self.ingest.transaction() as batch:
                await stage_snapshot(self.store, batch.stage, snap, self.name)
                await self.ingest.stage_log(batch, {"type": event_types.RELAY_SESSION_SYNCED,
                                                    "properties": {"sessionID": sid}})
            done.fresh_parts.update(dict.fromkeys(snap.part_ids, received_by[sid]))
            if stored_status.get(sid, IDLE) != snap.status:
                # opencode does not keep statuses: say the one it has now on the stream.
                await self.ingest.apply(status_events(sid, snap.status, directory))
        # Sessions that moved without looking stale: the events they missed are all they need.
        for sid in sorted(set(history) - {snap.info["id"] for snap in snapshots}):
            done.replayed |= await self._replay(sid, stored_infos[sid].get("directory"),
                                                cursors[sid], history[sid])
        # Requests of sessions that were not stale may have changed too.
        synced_ids = {info["id"] for info in to_sync}
        for info in upstream_sessions:
            if info["id"] not in synced_ids:
                async with transaction(self.redis, self.store.keys.requests(info["id"])) as pipe:
                    pipe.delete(self.store.keys.requests(info["id"]))
                    for request in requests.get(info["id"], []):
                        self.store.put_request(pipe, info["id"], request)
                    await pipe.execute()
        missing = sorted(set(stored_ids) - upstream_ids)
        recorded = await self.store.upstream_names(missing)
        for sid in missing:
            if recorded.get(sid, self.name if self.owns_unrecorded else None) == self.name:
                await self._remove_if_gone(sid)
        self.ingest.clear_part_cache()
        logger.info("reconciled with opencode: %d sessions, %d re-read, %d durable events "
                    "replayed", len(upstream_sessions), len(snapshots), len(done.replayed))
        return done

    async def _missed_history(self, sids: list[str], upstream_ids: set[str],
                              ) -> tuple[dict[str, Cursor], dict[str, list[DurableEvent]]]:
        """The recorded cursor of each of `sids` that has one, and opencode's durable events
        of those sessions after it, for those that have any (one request for all)."""
        cursors = await read_cursors(self.redis, self.store.keys, sids)
        if not cursors:
            return {}, {}
        # Every session not named gets its whole history: name the others past their end.
        after = dict.fromkeys(upstream_ids, _BEYOND)
        after.update({sid: cursor.seq for sid, cursor in cursors.items()})
        try:
            rows = await self.upstream.sync_history(after)
        except UpstreamError as exc:  # an opencode without durable history: snapshots only
            logger.warning("opencode's durable history is unavailable (%s); sessions are "
                           "re-read without replaying what their streams missed", exc)
            return {}, {}
        history: dict[str, list[DurableEvent]] = {}
        for row in rows:
            event = DurableEvent.parse(row)
            if event is not None and event.session in cursors:
                history.setdefault(event.session, []).append(event)
        return cursors, history

    async def _replay(self, sid: str, directory: str | None, cursor: Cursor,
                      history: list[DurableEvent]) -> set[str]:
        """Puts the durable events of `sid` after `cursor` through the ingest path (state and
        log), in batches; returns their ids."""
        events = replay(history, cursor, directory)
        for start in range(0, len(events), self.batch_size):
            await self.ingest.apply(events[start:start + self.batch_size])
        missed = {e.id for e in history if e.seq > cursor.seq}
        count = len(missed - {cursor.ahead})
        self.ingest.count_replayed(count)
        if missed:
            logger.info("replayed %d durable events of session %s after its sequence %d",
                        count, sid, cursor.seq)
        return missed

    async def _stored_statuses(self, sids: list[str]) -> dict[str, JSON]:
        """The status Redis holds for each of `sids` that has one (one pipelined read)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.get(self.store.keys.status(sid))
            found = await pipe.execute()
        return {sid: json.loads(raw) for sid, raw in zip(sids, found, strict=True)
                if raw is not None}

    async def _remove_if_gone(self, sid: str) -> None:
        """Removes a stored session when opencode answers 404 for it, logging a
        `relay.session.synced` that says so; any other answer keeps it."""
        info = await self.store.get_session(sid)
        try:
            await self.upstream.get_session(sid, (info or {}).get("directory"))
            return
        except UpstreamError as exc:
            if exc.status != 404:
                return
        async with self.ingest.transaction() as batch:
            await self.store.stage_remove_session(batch.stage, sid, (info or {}).get("parentID"))
            await self.ingest.stage_log(
                batch, {"type": event_types.RELAY_SESSION_SYNCED,
                        "properties": {"sessionID": sid, "removed": True}},
                expire_session_log=True)

