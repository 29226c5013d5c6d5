"""A session's share links, for its owner and its team's admins: make one, list them, revoke
one (shares.py).

The read-only view a link opens is served by api/shared.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..audit import audited, note
from ..errors import InvalidInput, NotFound
from ..relay import Relay
from ..security.access import Right
from ..security.principal import LOCAL, current_principal
from ..shares import MAX_SHARES_PER_SESSION
from .deps import get_relay
from .ids import SessionId, ShareId
from .models import CreateShare
from .schemas import GATED, Revoked, ShareCreated, ShareList, errors, ok

router = APIRouter(prefix="/api", responses=GATED)


@router.post("/sessions/{sid}/share", openapi_extra=audited("share.create"),
             responses={**ok(ShareCreated, description="The link; its token is shown only now"),
                        **errors(400, 403, 404, 422)})
async def create_share(sid: SessionId, request: Request, body: CreateShare | None = None,
                       relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid, Right.MANAGE)  # 404 unless the caller may see it
    if await relay.shares.count(sid) >= MAX_SHARES_PER_SESSION:
        raise InvalidInput(f"a session has at most {MAX_SHARES_PER_SESSION} share links; "
                           "revoke one first")
    principal = current_principal() or LOCAL
    share, token = await relay.shares.create(sid, principal.id,
                                             body.expiresIn if body else None)
    # Never the token: the share's id names it in the audit log.
    note(target=share.id, session=sid, expires=share.expires is not None)
    path = f"/share/{token}"
    return {**share.public(), "token": token, "path": path,
            "url": str(request.base_url).rstrip("/") + path}


@router.get("/sessions/{sid}/shares", responses={**ok(ShareList), **errors(400, 403, 404)})
async def list_shares(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid, Right.MANAGE)
    return {"shares": [share.public() for share in await relay.shares.list(sid)]}


@router.delete("/sessions/{sid}/shares/{share_id}", openapi_extra=audited("share.revoke"),
               responses={**ok(Revoked), **errors(400, 403, 404)})
async def revoke_share(sid: SessionId, share_id: ShareId,
                       relay: Relay = Depends(get_relay)) -> Any:
    await relay.sessions.get(sid, Right.MANAGE)
    note(target=share_id, session=sid)
    if not await relay.shares.revoke(sid, share_id):
        raise NotFound("share link", share_id)
    return {"revoked": True}
