"""opencode's durable history of each session: how far it is committed here, and what to replay.

opencode keeps every durable event of a session (session info, messages, parts, removals) with a
per-session sequence number, and sends each one live twice in a row: the event itself, then its
record `{"type": "sync", "syncEvent": {id, type, seq, aggregateID, data}}` under the same id.
Deltas, statuses, diffs, todos and requests are not durable.

With every ingest batch, `SequenceRecorder` stages per session, in the transaction of the
session's slot (store/staging.py; `Keys.session_sequence` is under the session's hash tag), the
last sequence number committed and, when the batch ended between a durable event and its
record, that event's id. After a takeover or a reconnect, `replay` turns the history opencode
gives after that number back into live-shaped events for the ingest path: the event committed
ahead of its record gets only its record, one at or before the number nothing, so nothing is
logged twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from .. import events as event_types
from ..store.keys import Keys
from ..store.replies import text
from ..store.staging import Staging
from .routing import session_id_of

JSON = dict[str, Any]
SEQ = "seq"  # the hash fields: the last committed sequence number,
AHEAD = "ahead"  # and the last durable event committed, if its record may not have been
_DELETED = f"{event_types.SESSION_DELETED}."  # a deletion's record: its history is gone too


@dataclass(frozen=True)
class Cursor:
    """How far a session's durable history is committed in Redis."""

    seq: int
    ahead: str | None = None  # an event committed before its record (its seq may be > `seq`)


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
        if event.id != cursor.ahead:
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

    def stage(self, stage: Staging, keys: Keys, payloads: Sequence[JSON],
              removed: Callable[[str], bool] = lambda _sid: False) -> None:
        """At most one HSET per session the batch's durable events touch, sessions the batch
        `removed` left out (their keys are gone with them).

        opencode sends a record right after its event, so only a session's last durable event
        of a batch can lack its record: one `ahead` field is enough, and a stale one is
        harmless (its sequence number is at or below `seq` once its record is in)."""
        ahead: dict[str, str | None] = {}
        last: dict[str, int] = {}
        for payload in payloads:
            kind = payload.get("type")
            if kind == event_types.SYNC:
                found = _record_of(payload)
                if found is not None:
                    sid, eid, seq = found
                    if ahead.get(sid) == eid:
                        ahead[sid] = None
                    last[sid] = max(seq, last.get(sid, -1))
            elif kind in event_types.DURABLE and kind != event_types.SESSION_DELETED:
                owner, event_id = session_id_of(payload), payload.get("id")
                if owner and isinstance(event_id, str):
                    ahead[owner] = event_id
        for sid in {*ahead, *last}:
            if removed(sid):
                continue
            mapping: dict[FieldT, EncodableT] = {}
            newest = last.get(sid)
            if newest is not None and newest > self._written.get(sid, -1):
                mapping[SEQ] = newest
                self._written[sid] = newest
            went_ahead = ahead.get(sid)
            if went_ahead is not None:
                mapping[AHEAD] = went_ahead
            if mapping:
                stage.on(sid).hset(keys.session_sequence(sid), mapping=mapping)


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
        seq = named.get(SEQ)
        if seq is not None and seq.isdigit():
            cursors[sid] = Cursor(int(seq), named.get(AHEAD))
    return cursors
