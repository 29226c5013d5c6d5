"""SSE routes: every event, or one session's (with its sub-agent sessions')."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from ..fanout.stream import event_stream
from ..relay import Relay
from ..security.principal import Principal, current_principal
from ..store.log import EventId
from .deps import get_relay
from .ids import SessionId
from .schemas import EVENT_STREAM, GATED, RESUME_PATTERN, errors

router = APIRouter(prefix="/api", responses=GATED)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Documented only: a malformed event id is answered 400 `bad_event_id` (store/log.py), not 422.
RESUME = {"pattern": RESUME_PATTERN, "description": "Resume after this event id ('<ms>-<seq>')"}
# How often a stream a team role let in checks the role still does (at its next frame).
TEAM_RECHECK_SECONDS = 5.0


def _resume_point(last_event_id: str | None, after: str | None) -> EventId | None:
    chosen = last_event_id or after
    return EventId.parse(chosen) if chosen else None


@router.get("/events", response_class=StreamingResponse,
            responses={**EVENT_STREAM, **errors(400, 422, 429)})
async def all_events(after: str | None = Query(None, max_length=50, json_schema_extra=RESUME),
                     last_event_id: str | None = Header(None, max_length=50,
                                                        json_schema_extra=RESUME),
                     relay: Relay = Depends(get_relay)) -> StreamingResponse:
    resume = _resume_point(last_event_id, after)
    # Before the 200: with Redis unreachable the client gets a 503 saying so, not a stream
    # that stays silent (a session's stream reads the session first, which does the same).
    await relay.redis.ping()
    # Principals other than admins get only the events of their own sessions.
    stream = event_stream(relay.hub, relay.log, relay.keys.events, None, resume,
                          relay.settings.heartbeat_seconds, relay.access.event_filter())
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/sessions/{sid}/events", response_class=StreamingResponse,
            responses={**EVENT_STREAM, **errors(400, 404, 422, 429)})
async def session_events(sid: SessionId,
                         after: str | None = Query(None, max_length=50,
                                                   json_schema_extra=RESUME),
                         last_event_id: str | None = Header(None, max_length=50,
                                                            json_schema_extra=RESUME),
                         relay: Relay = Depends(get_relay)) -> StreamingResponse:
    resume = _resume_point(last_event_id, after)
    await relay.sessions.get(sid)
    stream = event_stream(relay.hub, relay.log, relay.keys.session_events(sid), sid, resume,
                          relay.settings.heartbeat_seconds)
    principal = current_principal()
    if principal is not None and not relay.access.sees_all(principal) \
            and await relay.access.owner_of(sid) != principal.id:
        stream = _while_in_team(relay, principal, sid, stream)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


async def _while_in_team(relay: Relay, principal: Principal, sid: str,
                         stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A teammate's stream of the session, ended once it has left the team (checked at the
    first frame after every TEAM_RECHECK_SECONDS; heartbeats are frames too)."""
    checked = time.monotonic()
    try:
        async for chunk in stream:
            if time.monotonic() - checked > TEAM_RECHECK_SECONDS:
                if not await relay.access.may_see(principal, sid):
                    return  # its next connect gets the 404
                checked = time.monotonic()
            yield chunk
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
