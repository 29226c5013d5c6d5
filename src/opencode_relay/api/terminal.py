"""Terminal routes: open the session's terminal, resize or end it, and its WebSocket.

`POST /api/sessions/{sid}/terminal` answers the caller's live terminal of the session or opens
one in the session's directory; `GET /api/terminals/{id}/connect` (WebSocket) streams it: text
frames both ways, and opencode's binary control frames (`\\x00{"cursor": N}`) passed on, so a
client reconnecting with `?cursor=N` misses nothing and sees nothing twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from ..audit import audited, note
from ..errors import InvalidInput, RelayError
from ..ids import check_id
from ..relay import Relay
from ..security.access import Right
from ..security.gate import _headers
from ..security.principal import current_principal
from ..terminal.bridge import Bridge
from ..terminal.limits import InputLimit
from ..terminal.service import require_grant
from ..upstream import pty
from .deps import get_relay
from .errors import close_of, redis_failure, render
from .ids import SessionId, TerminalId
from .schemas import GATED, Done, TerminalInfo, errors, ok

router = APIRouter(prefix="/api", responses=GATED)


class TerminalSize(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = Field(ge=1, le=1000)
    cols: int = Field(ge=1, le=1000)


@router.post("/sessions/{sid}/terminal", openapi_extra=audited("terminal.open"),
             responses={**ok(TerminalInfo), **errors(400, 403, 404)})
async def open_terminal(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    """The caller's terminal of this session (reattached while its shell lives), or a new one
    in the session's directory. Admins and principals granted `terminal` only (403); a session
    the caller cannot see is 404 first, as on every session route."""
    target = await relay.sessions.target(sid, Right.DRIVE)
    require_grant()
    opened = await relay.terminals.open(target, sid)
    note(target=str(opened.get("id")))
    return opened


@router.put("/terminals/{pty_id}/size",
            responses={**ok(TerminalInfo), **errors(400, 403, 404, 422)})
async def resize_terminal(pty_id: TerminalId, body: TerminalSize,
                          relay: Relay = Depends(get_relay)) -> Any:
    record = await relay.terminals.owned(pty_id)
    return await relay.terminals.resize(record, body.rows, body.cols)


@router.delete("/terminals/{pty_id}", openapi_extra=audited("terminal.close"),
               responses={**ok(Done), **errors(400, 403, 404)})
async def close_terminal(pty_id: TerminalId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.terminals.close(await relay.terminals.owned(pty_id))
    return {"ok": True}


def _cursor(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.lstrip("-").isdigit() or len(raw) > 20 or int(raw) < -1:
        raise InvalidInput("cursor must be an integer >= -1 (the output bytes already seen; "
                           "-1: only new output)")
    return int(raw)


@router.websocket("/terminals/{pty_id}/connect")
async def connect_terminal(websocket: WebSocket, pty_id: str) -> Response | None:
    """Streams the caller's own terminal. Refusals before the socket opens are the HTTP answers
    any route gives (403, 404, …); afterwards the close code and reason say why."""
    relay: Relay = websocket.state.relay
    try:
        check_id("terminal", "pty", pty_id)  # by hand: a WebSocket route's Path() is unchecked
        cursor = _cursor(websocket.query_params.get("cursor"))
        record = await relay.terminals.owned(pty_id)
        client = relay.terminals.client_of(record)
        upstream = await pty.open_socket(client, record.id, record.directory, cursor)
    except RelayError as exc:
        await websocket.send_denial_response(render(exc))
        return None
    except RedisError as exc:
        await websocket.send_denial_response(redis_failure(exc))
        return None
    await websocket.accept()
    settings = relay.settings
    principal = current_principal()
    bridge = Bridge(websocket, upstream,
                    InputLimit(settings.terminal_max_input_bytes,
                               settings.terminal_inputs_per_second),
                    principal.id if principal else "", _headers(websocket.scope))

    async def close(exc: RelayError) -> None:
        code, reason = close_of(exc)
        await websocket.close(code, reason)

    await relay.terminals.run(record, bridge, close)
    return None

