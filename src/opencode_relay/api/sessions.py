"""Session routes: reads come from Redis, actions go to opencode."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from ..attachments import check_file_parts
from ..audit import audited, note
from ..errors import InvalidInput
from ..relay import Relay
from ..security.access import ANSWERING, Right
from ..security.principal import current_principal
from ..session_service import SessionTarget
from ..store.log import LogEntry
from ..store.staging import Staging
from ..store.state import JSON, MessageRecord, dumps
from ..teams import Team
from .deps import get_relay
from .ids import MessageId, PermissionId, QuestionId, SessionId
from .models import CreateSession, PermissionReply, Prompt, QuestionReply, RenameSession
from .schemas import (
    GATED,
    MESSAGE_LINKS,
    SESSION_LINKS,
    Aborted,
    Accepted,
    Deleted,
    DiffBody,
    Done,
    ListedSessions,
    Message,
    OneSession,
    PartList,
    PendingRequests,
    Session,
    SessionList,
    StatusBody,
    TodosBody,
    Transcript,
    errors,
    ok,
)

router = APIRouter(prefix="/api", responses=GATED)


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _list(name: bytes, items: list[bytes]) -> bytes:
    return b'{"' + name + b'":[' + b",".join(items) + b"]}"


def _transcript(records: list[MessageRecord], cursor: str) -> bytes:
    messages = b",".join(b'{"info":' + r.info + b',"parts":[' + b",".join(r.parts) + b"]}"
                         for r in records)
    return b'{"messages":[' + messages + b'],"cursor":"' + cursor.encode() + b'"}'


@router.get("/sessions", responses={**ok(ListedSessions), **errors(422)})
async def list_sessions(limit: int = Query(50, ge=1, le=1000),
                        search: str | None = Query(None, max_length=200),
                        relay: Relay = Depends(get_relay)) -> Response:
    if not search:
        # Anyone but an admin sees only their own sessions: the whole list is filtered.
        ids = await relay.access.visible(
            await relay.store.list_session_ids(limit if relay.access.sees_all() else None), limit)
        return await _listed(relay, await relay.store.sessions_raw(ids))
    ids = await relay.access.visible(await relay.store.list_session_ids())
    return await _listed(relay, await relay.store.sessions_titled(ids, search, limit))


async def _listed(relay: Relay, found: list[tuple[str, bytes]]) -> Response:
    """The list's answer: the sessions as stored, and the name of each one's team."""
    holders = await relay.access.holders(sid for sid, _raw in found)  # cached once read
    names = await relay.access.teams.names(h.team for h in holders.values() if h.team)
    teams = {sid: names[h.team] for sid, h in holders.items() if h.team in names}
    sessions = b",".join(raw for _sid, raw in found)
    return raw_json(b'{"sessions":[' + sessions + b'],"teams":' + dumps(teams) + b"}")


@router.post("/sessions", openapi_extra=audited("session.create"),
             responses={**ok(Session, links=SESSION_LINKS), **errors(400, 403, 404, 422)})
async def create_session(body: CreateSession, relay: Relay = Depends(get_relay)) -> Any:
    payload = body.model_dump(exclude_none=True, exclude={"directory", "upstream", "team"})
    if body.team:
        note(team=body.team)  # the team asked for, in the audit entry even when refused
    if body.parentID:
        # 404 unless the caller may see the parent; a child lives on its parent's server, in
        # its parent's team.
        upstream = (await relay.sessions.target(body.parentID, Right.DRIVE)).upstream
        team_id = await relay.access.team_of(body.parentID)
        team = await relay.access.teams.by_id(team_id) if team_id else None
    else:
        team = await relay.access.teams.for_new_session(
            await relay.access.roles(), body.team, "team" in body.model_fields_set,
            any_team=relay.access.sees_all())
        upstream = relay.sessions.upstream_named(_team_upstream(team, body.upstream))
    # Must exist and lie under a workspace root (symlinks and '..' resolved first), and under
    # the team's root: a team's session starts there unless it names a folder below it.
    directory = await relay.workspace.resolve(body.directory or (team.root if team else None))
    if team is not None:
        note(team=team.name)
        team.check_directory(directory)
    session = await upstream.client.create_session(payload, directory)
    note(target=session["id"], session=session["id"])
    # Stored now so an immediate read finds it even before the event arrives. opencode's own
    # session.created may reach the log before the owner record, when only admins may see it,
    # so the creator is told again once it owns the session.
    sessions = (session["id"], *([body.parentID] if body.parentID else []))
    async with Staging(relay.redis) as stage:
        relay.store.put_session(stage, session, upstream.name)
        await commit_created(relay, stage, session, sessions, upstream.name,
                             team.id if team else None)
    return session


def _team_upstream(team: Team | None, requested: str | None) -> str | None:
    """The opencode server a new session goes to: its team's, when the team is bound to one."""
    if team is None or team.upstream is None:
        return requested
    if requested is not None and requested != team.upstream:
        raise InvalidInput(f"team {team.name!r} runs its sessions on opencode server "
                           f"{team.upstream!r}, not {requested!r}")
    return team.upstream


async def commit_created(relay: Relay, stage: Staging, session: JSON,
                         streams: tuple[str, ...], upstream: str, team: str | None) -> None:
    """Commits `stage` with the caller as the owner of a session it just made (for `team`, an
    id, or none), and `relay.session.created` on `streams` (opencode's own session.created may
    have gone out before the owner record), naming the team."""
    names = await relay.access.teams.names([team] if team else [])
    created = {"type": "relay.session.created",
               "properties": {"sessionID": session["id"], "info": session,
                              "team": names.get(team) if team else None}}
    relay.access.claim(stage.on(session["id"]), session["id"], team)
    await relay.log.commit(stage, [LogEntry(None, dumps(created), streams)], upstream)


@router.get("/sessions/{sid}", responses={**ok(OneSession), **errors(400, 404)})
async def get_session(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    session = await relay.sessions.get(sid)
    standing = await relay.access.standing(current_principal(), sid)
    team = await relay.access.teams.by_id(standing.team) if standing.team else None
    return {"session": session, "usage": await relay.sessions.usage(sid),
            "access": {"team": team.name if team else None, "role": standing.role,
                       "right": (standing.right or Right.READ).name.lower()}}


@router.patch("/sessions/{sid}", openapi_extra=audited("session.rename"),
              responses={**ok(OneSession), **errors(400, 403, 404, 422)})
async def rename_session(sid: SessionId, body: RenameSession,
                         relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.MANAGE)
    updated = await target.client.update_session(sid, body.model_dump(), target.directory)
    async with Staging(relay.redis) as stage:
        relay.store.put_session(stage, updated, target.upstream.name)  # read-your-writes
        await stage.commit()
    return {"session": updated}


@router.delete("/sessions/{sid}", openapi_extra=audited("session.delete"),
               responses={**ok(Deleted), **errors(400, 403, 404)})
async def delete_session(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.MANAGE)
    await target.client.delete_session(sid, target.directory)
    # Gone for readers at once; the session.deleted event that follows finds nothing left.
    async with Staging(relay.redis) as stage:
        await relay.store.stage_remove_session(stage, sid, target.info.get("parentID"))
        await stage.commit()
    return {"deleted": True}


@router.get("/sessions/{sid}/messages", responses={**ok(Transcript), **errors(400, 404)})
async def list_messages(sid: SessionId, relay: Relay = Depends(get_relay)) -> Response:
    await relay.sessions.get(sid)
    records, cursor = await relay.sessions.transcript(sid)
    return raw_json(_transcript(records, str(cursor)))


async def _checked_prompt(relay: Relay, sid: str, body: Prompt) -> tuple[SessionTarget, JSON]:
    # Its size only: the text itself never goes into the audit log.
    note(chars=len(body.text or "") + sum(len(str(p.get("text") or "")) for p in body.parts or []),
         files=sum(1 for p in body.parts or [] if p.get("type") == "file"))
    target = await relay.sessions.target(sid, Right.DRIVE)
    prompt = body.to_opencode()
    check_file_parts(prompt["parts"], target.directory, relay.settings.max_attachment_bytes)
    await relay.sessions.check_choices(target.upstream, prompt, target.directory)
    await relay.sessions.check_message_id(sid, prompt)
    return target, prompt


@router.post("/sessions/{sid}/messages", openapi_extra=audited("session.prompt"),
             responses={**ok(Message, description="The answer, once the model has given it",
                                links=MESSAGE_LINKS),
                        **errors(400, 403, 404, 409, 413, 415, 422, 429)})
async def send_prompt(sid: SessionId, body: Prompt, relay: Relay = Depends(get_relay)) -> Any:
    target, prompt = await _checked_prompt(relay, sid, body)
    return await target.client.prompt(sid, prompt, target.directory,
                                      timeout=relay.settings.prompt_timeout_seconds)


@router.post("/sessions/{sid}/prompt", status_code=202, openapi_extra=audited("session.prompt"),
             responses={**ok(Accepted, 202, "Sent: the answer arrives as events"),
                        **errors(400, 403, 404, 409, 413, 415, 422, 429)})
async def send_prompt_async(sid: SessionId, body: Prompt, relay: Relay = Depends(get_relay)) -> Any:
    target, prompt = await _checked_prompt(relay, sid, body)
    await target.client.prompt_async(sid, prompt, target.directory)
    return {"accepted": True}


@router.post("/sessions/{sid}/abort", openapi_extra=audited("session.abort"),
             responses={**ok(Aborted), **errors(400, 403, 404)})
async def abort(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.DRIVE)
    await target.client.abort(sid, target.directory)
    return {"aborted": True}


@router.get("/messages/{mid}/parts", responses={**ok(PartList), **errors(400, 404)})
async def list_parts(mid: MessageId, relay: Relay = Depends(get_relay)) -> Response:
    sid = await relay.sessions.session_of_message(mid)
    return raw_json(_list(b"parts", await relay.store.read_parts(sid, mid)))


@router.get("/sessions/{sid}/status", responses={**ok(StatusBody), **errors(400, 404)})
async def status(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid)
    return {"status": await relay.store.read_json(relay.keys.status(sid)) or {"type": "idle"}}


@router.get("/sessions/{sid}/diff", responses={**ok(DiffBody), **errors(400, 404)})
async def diff(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid)
    return {"diff": await relay.store.read_json(relay.keys.diff(sid)) or []}


@router.get("/sessions/{sid}/todos", responses={**ok(TodosBody), **errors(400, 404)})
async def todos(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid)
    return {"todos": await relay.store.read_json(relay.keys.todos(sid)) or []}


@router.get("/sessions/{sid}/children", responses={**ok(SessionList), **errors(400, 404)})
async def children(sid: SessionId, relay: Relay = Depends(get_relay)) -> Response:
    await relay.sessions.get(sid)
    ids = await relay.store.child_ids(sid)
    return raw_json(_list(b"sessions", await relay.store.get_sessions_raw(ids)))


@router.get("/sessions/{sid}/requests", responses={**ok(PendingRequests), **errors(400, 404)})
async def pending_requests(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid)
    requests = await relay.store.pending_requests(await relay.sessions.family(sid))
    return {"permissions": [r for r in requests if str(r.get("id", "")).startswith("per")],
            "questions": [r for r in requests if str(r.get("id", "")).startswith("que")]}


async def _request_target(relay: Relay, sid: str, request_id: str) -> SessionTarget:
    """The session (this one or a sub-agent's) whose pending request this is. Answering is
    for the session's owner and its team's admins (security/access.py)."""
    await relay.sessions.get(sid, ANSWERING)
    owner, _request = await relay.sessions.pending_request(sid, request_id)
    return await relay.sessions.target(owner, ANSWERING)


@router.post("/sessions/{sid}/permissions/{request_id}",
             openapi_extra=audited("permission.reply"),
             responses={**ok(Done), **errors(400, 403, 404, 422)})
async def answer_permission(sid: SessionId, request_id: PermissionId, body: PermissionReply,
                            relay: Relay = Depends(get_relay)) -> Any:
    note(reply=body.reply)  # its message is the person's words: not recorded
    target = await _request_target(relay, sid, request_id)
    await target.client.reply_permission(request_id, body.model_dump(exclude_none=True),
                                         target.directory)
    return {"ok": True}


@router.post("/sessions/{sid}/questions/{request_id}",
             openapi_extra=audited("question.reply"),
             responses={**ok(Done), **errors(400, 403, 404, 422)})
async def answer_question(sid: SessionId, request_id: QuestionId, body: QuestionReply,
                          relay: Relay = Depends(get_relay)) -> Any:
    note(answers=len(body.answers))  # how many, never what
    target = await _request_target(relay, sid, request_id)
    await target.client.reply_question(request_id, body.model_dump(), target.directory)
    return {"ok": True}


@router.post("/sessions/{sid}/questions/{request_id}/reject",
             openapi_extra=audited("question.reject"),
             responses={**ok(Done), **errors(400, 403, 404)})
async def reject_question(sid: SessionId, request_id: QuestionId,
                          relay: Relay = Depends(get_relay)) -> Any:
    target = await _request_target(relay, sid, request_id)
    await target.client.reject_question(request_id, target.directory)
    return {"ok": True}
