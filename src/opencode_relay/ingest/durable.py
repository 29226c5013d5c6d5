"""opencode's durable history of each session: how far it is committed here, and what to replay.

opencode keeps every durable event of a session (session info, messages, parts, removals) with a
per-session sequence number, and sends each one live twice in a row: the event itself, then its
record `{"type": "sync", "syncEvent": {id, type, seq, aggregateID, data}}` under the same id.
Deltas, statuses, diffs, todos and requests are not durable.

With every ingest batch, in the batch's own transaction, `SequenceRecorder` stages per session
(in the session's slot, `Keys.session_sequence`) the last sequence number committed and the ids
of durable events committed ahead of their record (a batch may end between the two). After a
takeover or a reconnect, `replay` turns the history opencode gives after that number back into
live-shaped events for the ingest path: an event whose id was committed already gets only its
record, one at or before the number nothing, so nothing is logged twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from .. import events as event_types
from ..store.keys import Keys
from ..store.replies import text
from .routing import session_id_of

JSON = dict[str, Any]
SEQ = "seq"  # the hash field holding the last committed sequence number
_DELETED = f"{event_types.SESSION_DELETED}."  # a deletion's record: its history is gone too


@dataclass(frozen=True)
class Cursor:
    """How far a session's durable history is committed in Redis."""

    seq: int
    ahead: frozenset[str] = field(default_factory=frozenset)  # ids committed before their record


@dataclass(frozen=True)
class DurableEvent:
    """One row of opencode's `POST /sync/history`."""

    id: str
    session: str
    seq: int
    type: str  # versioned, e.g. "message.part.updated.1"
    data: JSON

    @classmethod
    def parse(cls, row: Any) -> DurableEvent | None:
        """The row, or None when it is not a session's event of the expected shape."""
        if not isinstance(row, dict):
            return None
        eid, sid, seq, kind, data = (row.get(k) for k in ("id", "aggregate_id", "seq", "type",
                                                            "data"))
        if not (isinstance(eid, str) and isinstance(sid, str) and sid.startswith("ses")
                and isinstance(seq, int) and not isinstance(seq, bool) and isinstance(kind, str)
                and isinstance(data, dict)):
            return None
        return cls(eid, sid, seq, kind, data)

    @property
    def event_type(self) -> str:
        """The type the live event has: the record's type without its version."""
        base, _, version = self.type.rpartition(".")
        return base if base and version.isdigit() else self.type

    def live(self) -> JSON:
        """The event as opencode sent it live (its properties are the record's data)."""
        return {"id": self.id, "type": self.event_type, "properties": self.data}

    def record(self) -> JSON:
        """Its `sync` record as sent live right after it."""
        return {"id": self.id, "type": event_types.SYNC,
                "syncEvent": {"type": self.type, "id": self.id, "seq": self.seq,
                              "aggregateID": self.session, "data": self.data}}


def replay(history: Iterable[DurableEvent], cursor: Cursor, directory: str | None) -> list[JSON]:
    """The `{directory, payload}` events that bring a session from `cursor` to the end of
    `history`, in sequence order: each event not committed yet followed by its record, only the
    record for an event committed ahead of it, nothing for what the cursor covers."""
    out: list[JSON] = []
    for event in sorted(history, key=lambda e: e.seq):
        if event.seq <= cursor.seq:
            continue
        if event.id not in cursor.ahead:
            out.append({"directory": directory, "payload": event.live()})
        out.append({"directory": directory, "payload": event.record()})
    return out


def replayed_already(item: Any, ids: set[str]) -> bool:
    """Whether a live event (or its record) read while replaying was among the replayed ones."""
    payload = item.get("payload") if isinstance(item, dict) else None
    if not isinstance(payload, dict):
        return False
    if payload.get("type") == event_types.SYNC:
        record = payload.get("syncEvent")
        return isinstance(record, dict) and record.get("id") in ids
    return payload.get("type") in event_types.DURABLE and payload.get("id") in ids


def _record_of(payload: JSON) -> tuple[str, str, int] | None:
    """(session, id, seq) of a `sync` record of a session's event, deletions left out."""
    record = payload.get("syncEvent")
    if not isinstance(record, dict):
        return None
    sid, eid, seq, kind = (record.get(k) for k in ("aggregateID", "id", "seq", "type"))
    if not (isinstance(sid, str) and sid.startswith("ses") and isinstance(eid, str)
            and isinstance(seq, int) and isinstance(kind, str)):
        return None
    return None if kind.startswith(_DELETED) else (sid, eid, seq)


class SequenceRecorder:
    """Stages, with each batch, how far each session's durable history is committed."""

    def __init__(self, cache_size: int = 50_000) -> None:
        # The last number written per session, so a late record never moves it back.
        self._written: LRUCache[str, int] = LRUCache(maxsize=cache_size)

    def forget(self) -> None:
        """After a reconnect: Redis holds the truth (another replica may have written)."""
        self._written.clear()

    def stage(self, pipe: Pipeline, keys: Keys, payloads: Sequence[JSON],
              removed: Callable[[str], bool] = lambda _sid: False) -> None:
        """One HSET (and at most one HDEL) per session the batch's durable events touch,
        sessions the batch `removed` left out (their keys are gone with them)."""
        ahead: dict[str, dict[str, None]] = {}  # ordered sets of ids without their record yet
        resolved: dict[str, set[str]] = {}
        last: dict[str, int] = {}
        for payload in payloads:
            kind = payload.get("type")
            if kind == event_types.SYNC:
                found = _record_of(payload)
                if found is None:
                    continue
                sid, eid, seq = found
                if eid in ahead.get(sid, {}):
                    del ahead[sid][eid]
                else:
                    resolved.setdefault(sid, set()).add(eid)
                last[sid] = max(seq, last.get(sid, -1))
            elif kind in event_types.DURABLE and kind != event_types.SESSION_DELETED:
                owner, event_id = session_id_of(payload), payload.get("id")
                if owner and isinstance(event_id, str):
                    ahead.setdefault(owner, {})[event_id] = None
        for sid in {*ahead, *last}:
            if removed(sid):
                continue
            key = keys.session_sequence(sid)
            mapping: dict[FieldT, EncodableT] = dict.fromkeys(ahead.get(sid, {}), "1")
            newest = last.get(sid)
            if newest is not None and newest > self._written.get(sid, -1):
                mapping[SEQ] = newest
                self._written[sid] = newest
            if mapping:
                pipe.hset(key, mapping=mapping)
            if resolved.get(sid):
                pipe.hdel(key, *sorted(resolved[sid]))


async def read_cursors(redis: Redis, keys: Keys, sids: Sequence[str]) -> dict[str, Cursor]:
    """The recorded cursor of each session that has one (sessions never recorded are left
    out: nothing says which of their events were committed)."""
    async with redis.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hgetall(keys.session_sequence(sid))
        found = await pipe.execute()
    cursors: dict[str, Cursor] = {}
    for sid, fields in zip(sids, found, strict=True):
        named = {text(k): text(v) for k, v in (fields or {}).items()}
        seq = named.pop(SEQ, None)
        if seq is not None and seq.isdigit():
            cursors[sid] = Cursor(int(seq), frozenset(named))
    return cursors
