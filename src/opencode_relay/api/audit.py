"""The audit log over HTTP: the middleware that records audited routes, and `GET /api/audit`.

`AuditTrail` runs inside the gate (so the caller and the request id are known) and records a
request whose matched route declares an action (`audit.audited(...)`), once the status is known
and before the answer goes out. The target defaults to the path's most specific id (a pending
request's, a terminal's, then the session's); a route adds more with `audit.note(...)`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import audit
from ..errors import Forbidden
from ..logs import current_request_id
from ..relay import Relay
from ..security.principal import current_principal
from .deps import get_relay
from .schemas import GATED, AuditPage, errors, ok

logger = logging.getLogger("opencode_relay.audit")

router = APIRouter(prefix="/api", responses=GATED)

_TARGETS = ("request_id", "pty_id", "sid")  # path parameters, most specific first


def action_of(scope: Scope) -> str | None:
    """The audit action the matched route declares, if any."""
    extra = getattr(scope.get("route"), "openapi_extra", None) or {}
    action = extra.get(audit.EXTENSION)
    return action if isinstance(action, str) else None


class AuditTrail:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note, token = audit.open_note()
        recorded = False

        async def send_recorded(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await _record(scope, note, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except BaseException:
            if not recorded:
                recorded = True
                await _record(scope, note, 500)
            raise
        finally:
            audit.close_note(token)


async def _record(scope: Scope, note: audit.Note, status: int) -> None:
    action = action_of(scope)
    relay: Relay | None = (scope.get("state") or {}).get("relay")
    if action is None or relay is None:
        return
    params: dict[str, Any] = scope.get("path_params") or {}
    target = note.target or next((str(params[p]) for p in _TARGETS if params.get(p)), None)
    session = note.session or (str(params["sid"]) if params.get("sid") else None)
    caller = current_principal()
    try:
        team = note.team or (str(params["team"]) if params.get("team") else None) or (
            await _team_name(relay, session) if session else None)
        await relay.audit.record(
            action, principal=audit.noted_principal(note, caller.id if caller else None),
            outcome=audit.outcome_of(status), target=target, session=session,
            request_id=current_request_id(), status=status, detail=note.detail, team=team)
    except (RedisError, OSError) as exc:
        # The action has happened (or was refused) already; its answer still goes out.
        logger.error("audit entry for %s not written: %s", action, exc,
                     extra={"action": action, "target": target, "status": status})


async def _team_name(relay: Relay, session: str) -> str | None:
    """The name of the session's team (sub-agent sessions: their parent's), if it has one."""
    team_id = await relay.access.team_of(session)
    team = await relay.access.teams.by_id(team_id) if team_id else None
    return team.name if team is not None else None


async def _query(since: str | None = Query(None, max_length=64, description=(
               "Only entries at or after this: a duration back from now (90s, 15m, 1h, 7d, "
               "2w), an ISO 8601 time (UTC unless it says) or epoch milliseconds")),
           until: str | None = Query(None, max_length=64,
                                     description="Only entries at or before this (as since)"),
           principal: str | None = Query(None, max_length=128,
                                         description="A token id, or 'cli'"),
           action: str | None = Query(None, max_length=64, description=(
               "An action (session.create), or a family ending in a dot (session.)")),
           session: str | None = Query(None, max_length=128,
                                       description="Only entries about this session"),
           team: str | None = Query(None, max_length=64,
                                    description="Only entries about this team (its name)"),
           limit: int = Query(100, ge=1, le=1000),
           after: str | None = Query(None, max_length=48, description=(
               "A page's `next`: continue with the entries older than it"))
           ) -> audit.AuditQuery:
    return audit.AuditQuery(
        since_ms=audit.parse_when(since, name="since") if since else None,
        until_ms=audit.parse_when(until, name="until") if until else None,
        principal=principal, action=action, session=session, team=team, limit=limit,
        after=audit.check_cursor(after) if after else None)


async def _admins_only(relay: Relay = Depends(get_relay)) -> None:
    caller = current_principal()
    if relay.settings.auth_enabled and (caller is None or not caller.admin):
        raise Forbidden("the audit log needs an admin token")


@router.get("/audit", dependencies=[Depends(_admins_only)],  # before the query is checked
            responses={**ok(AuditPage), **errors(400, 403, 422)})
async def read_audit(query: audit.AuditQuery = Depends(_query),
                     relay: Relay = Depends(get_relay)) -> Any:
    """Who changed what: newest first, filtered, paged with `next` (admins only)."""
    page = await relay.audit.page(query)
    return {"entries": page.entries, "next": page.next}
