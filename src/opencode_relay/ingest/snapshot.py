"""Copying a session's whole state from opencode's REST API into Redis.

Used after every (re)connect to opencode, so whatever happened while the relay was not listening
is in Redis, on first start to import existing sessions, and for read-through of a session Redis
lacks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .. import events as event_types
from ..store.staging import Staging
from ..store.state import JSON, StateStore
from ..upstream.client import OpencodeClient

IDLE: JSON = {"type": "idle"}


@dataclass
class SessionSnapshot:
    info: JSON
    messages: list[JSON]
    todos: list[Any]
    diff: list[Any]
    status: JSON = field(default_factory=lambda: dict(IDLE))
    requests: list[JSON] = field(default_factory=list)

    @property
    def part_ids(self) -> set[str]:
        return {p["id"] for m in self.messages for p in m.get("parts", [])}


async def fetch_snapshot(upstream: OpencodeClient, info: JSON, status: JSON | None = None,
                         requests: list[JSON] | None = None) -> SessionSnapshot:
    sid, directory = info["id"], info.get("directory")
    messages, todos, diff = await asyncio.gather(
        upstream.messages(sid, directory), upstream.todos(sid, directory),
        upstream.diff(sid, directory))
    return SessionSnapshot(info=info, messages=messages or [], todos=todos or [],
                           diff=diff or [], status=status or dict(IDLE),
                           requests=requests or [])


def status_events(sid: str, status: JSON, directory: str | None) -> list[JSON]:
    """`{directory, payload}` events saying a session's status as opencode says it live
    (`session.status`, and `session.idle` after an idle one)."""
    events: list[JSON] = [{"directory": directory, "payload": {
        "type": event_types.SESSION_STATUS_CHANGED,
        "properties": {"sessionID": sid, "status": status}}}]
    if status.get("type") == "idle":
        events.append({"directory": directory, "payload": {
            "type": event_types.SESSION_IDLE, "properties": {"sessionID": sid}}})
    return events


async def pending_requests_by_session(upstream: OpencodeClient,
                                      directories: set[str | None]) -> dict[str, list[JSON]]:
    """Open permission and question requests of every directory, grouped by session."""
    found: dict[str, list[JSON]] = {}
    for directory in directories:
        permissions, questions = await asyncio.gather(
            upstream.pending_permissions(directory), upstream.pending_questions(directory))
        for request in [*permissions, *questions]:
            if isinstance(request, dict) and request.get("sessionID"):
                found.setdefault(request["sessionID"], [])
                if all(r.get("id") != request.get("id") for r in found[request["sessionID"]]):
                    found[request["sessionID"]].append(request)
    return found


async def stage_snapshot(store: StateStore, stage: Staging, snap: SessionSnapshot,
                         upstream: str) -> None:
    """Stages writes that make Redis hold exactly `snap` for its session."""
    keys, sid = store.keys, snap.info["id"]
    pipe = stage.on(sid)
    upstream_messages = {m["info"]["id"]: m for m in snap.messages}
    for mid, stored_pids in (await store.part_ids_by_message(sid)).items():
        if mid not in upstream_messages:
            await store.stage_remove_message(stage, sid, mid)
            continue
        keep = {p["id"] for p in upstream_messages[mid].get("parts", [])}
        for pid in stored_pids:
            if pid not in keep:
                store.remove_part(pipe, sid, mid, pid)
    store.put_session(stage, snap.info, upstream)
    if store.search is not None:
        store.search.stage_title(stage, snap.info, cached=False)
    stage.indexes.zrem(keys.pruned, sid)
    pipe.delete(keys.usage(sid))
    for message in snap.messages:
        store.put_message(stage, message["info"])
        await store.stage_usage(pipe, message["info"])
        for part in message.get("parts", []):
            store.put_part(pipe, part)
            if store.search is not None:
                store.search.stage_part(stage, part, cached=False)
    store.put_json(pipe, keys.todos(sid), snap.todos)
    store.put_json(pipe, keys.diff(sid), snap.diff)
    store.put_json(pipe, keys.status(sid), snap.status)
    pipe.delete(keys.requests(sid))
    for request in snap.requests:
        store.put_request(pipe, sid, request)
