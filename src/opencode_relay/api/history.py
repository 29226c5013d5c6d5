"""A session's history: undo and redo (revert), fork, and compact (summarize).

Each action goes to opencode, and what it changed is written to Redis before the answer, so the
caller's next read sees it (the events that follow change nothing more).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..audit import audited, note
from ..errors import Busy, InvalidInput, NotFound, UpstreamError
from ..ids import MESSAGE_ID, id_pattern
from ..ingest.snapshot import fetch_snapshot, stage_snapshot
from ..relay import Relay
from ..security.access import Right
from ..session_service import SessionTarget
from ..store.staging import Staging
from .deps import get_relay
from .ids import SessionId
from .models import ModelRef
from .schemas import GATED, SESSION_LINKS, Done, OneSession, Session, errors, ok
from .sessions import commit_created

router = APIRouter(prefix="/api", responses=GATED)
T = TypeVar("T")

_MESSAGE = MESSAGE_ID
_PART = id_pattern("prt")


class Revert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messageID: str = Field(pattern=_MESSAGE, description="Undo this message and all after it")
    partID: str | None = Field(default=None, pattern=_PART,
                               description="Undo from this part of the message on")


class Fork(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messageID: str | None = Field(default=None, pattern=_MESSAGE,
                                  description="Copy the messages before this one (default: all)")


class Summarize(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef | None = Field(
        default=None, description="The model that writes the summary (default: the session's "
                                  "last used model)")


async def _message_of(relay: Relay, sid: str, mid: str) -> None:
    """NotFound unless `mid` is a stored message of this session."""
    if await relay.store.session_of_message(mid) != sid:
        raise NotFound("message", mid)


async def _unless_busy(action: Awaitable[T]) -> T:
    """opencode's action; its 409 (the session is working) as the relay's Busy."""
    try:
        return await action
    except UpstreamError as exc:
        if exc.status == 409:
            raise Busy(f"the session is busy: {exc.message}; wait until it is idle, "
                       "or stop it") from exc
        raise


async def _store_session(relay: Relay, target: SessionTarget, info: dict[str, Any]) -> None:
    async with Staging(relay.redis) as stage:
        relay.store.put_session(stage, info, target.upstream.name)  # read-your-writes
        await stage.commit()


@router.post("/sessions/{sid}/revert", openapi_extra=audited("session.revert"),
             responses={**ok(OneSession, description="The session, its `revert` set: the "
                                                     "message and those after it are undone "
                                                     "and the files restored"),
                        **errors(400, 403, 404, 409, 422)})
async def revert(sid: SessionId, body: Revert, relay: Relay = Depends(get_relay)) -> Any:
    note(message=body.messageID)
    target = await relay.sessions.target(sid, Right.DRIVE)
    await _message_of(relay, sid, body.messageID)
    if body.partID is not None:
        part = await relay.store.get_part(sid, body.partID)
        if part is None or part.get("messageID") != body.messageID:
            raise NotFound("part", body.partID)
    updated = await _unless_busy(target.client.revert(
        sid, body.model_dump(exclude_none=True), target.directory))
    await _store_session(relay, target, updated)
    return {"session": updated}


@router.post("/sessions/{sid}/unrevert", openapi_extra=audited("session.unrevert"),
             responses={**ok(OneSession, description="The session with its last undo taken "
                                                     "back (files restored)"),
                        **errors(400, 403, 404, 409)})
async def unrevert(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.DRIVE)
    updated = await _unless_busy(target.client.unrevert(sid, target.directory))
    await _store_session(relay, target, updated)
    return {"session": updated}


@router.post("/sessions/{sid}/fork", openapi_extra=audited("session.fork"),
             responses={**ok(Session, description="The new session, owned by the caller",
                             links=SESSION_LINKS),
                        **errors(400, 403, 404, 409, 422)})
async def fork(sid: SessionId, body: Fork | None = None,
               relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.DRIVE)
    team = await relay.access.team_of(sid)  # the fork stays in the team of the one forked
    request = (body or Fork()).model_dump(exclude_none=True)
    if "messageID" in request:
        await _message_of(relay, sid, request["messageID"])
    session = await _unless_busy(target.client.fork(sid, request, target.directory))
    note(target=session["id"])  # the new session; `session` stays the one forked from
    # As the create route: owned, stored with its copied messages and announced at once.
    snap = await fetch_snapshot(target.client, session)
    async with Staging(relay.redis) as stage:
        await stage_snapshot(relay.store, stage, snap, target.upstream.name)
        await commit_created(relay, stage, session, (session["id"],), target.upstream.name, team)
    return session


@router.post("/sessions/{sid}/summarize", openapi_extra=audited("session.summarize"),
             responses={**ok(Done, description="Compacted: a summary message now stands for "
                                               "the messages before it"),
                        **errors(400, 403, 404, 409, 422, 429)})
async def summarize(sid: SessionId, body: Summarize | None = None,
                    relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.DRIVE)
    model = body.model.model_dump() if body and body.model else None
    if model is None:
        model = (await relay.sessions.usage(sid))["model"]
    if model is None:
        raise InvalidInput("the session has no answer yet, so no model to summarize with; "
                           "give one as {\"model\": {\"providerID\", \"modelID\"}}")
    await relay.sessions.check_choices(target.upstream, {"model": model}, target.directory)
    await _unless_busy(target.client.summarize(sid, {**model, "auto": False}, target.directory,
                                               timeout=relay.settings.prompt_timeout_seconds))
    return {"ok": True}
