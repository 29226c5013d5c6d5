"""Web Push: the VAPID key to subscribe with, and each browser's subscription (push/)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..audit import audited, note
from ..errors import PushDisabled, Unauthenticated
from ..push import Push
from ..push.subscriptions import check_endpoint, check_keys
from ..relay import Relay
from ..security.principal import current_principal
from .deps import get_relay
from .models import PushSubscribe, PushUnsubscribe
from .schemas import GATED, PushKey, PushSubscribed, PushUnsubscribed, errors, ok

router = APIRouter(prefix="/api/push", responses=GATED)


def _push(relay: Relay) -> Push:
    if relay.push is None:
        raise PushDisabled()
    return relay.push


def _principal_id() -> str:
    principal = current_principal()
    if principal is None:  # the gate sets one for every /api route; never reached
        raise Unauthenticated()
    return principal.id


@router.get("/key", responses={**ok(PushKey), **errors(404)})
async def push_key(relay: Relay = Depends(get_relay)) -> Any:
    """The VAPID public key (made on first use, shared by every replica)."""
    return {"publicKey": await _push(relay).vapid.public_key()}


@router.post("/subscriptions", openapi_extra=audited("push.subscribe"),
             responses={**ok(PushSubscribed), **errors(400, 404, 422)})
async def subscribe(body: PushSubscribe, relay: Relay = Depends(get_relay)) -> Any:
    """Stores this browser's subscription for the caller: notifications of their sessions
    (and their sub-agents') go to it. Subscribing again replaces it; past
    RELAY_PUSH_SUBSCRIPTIONS_PER_PRINCIPAL the caller's oldest subscription goes."""
    push = _push(relay)
    check_endpoint(body.endpoint, push.endpoints)
    check_keys(body.keys.p256dh, body.keys.auth)
    sub_id = await push.subscriptions.add(_principal_id(), body.endpoint, body.keys.p256dh,
                                          body.keys.auth, body.expirationTime)
    note(target=sub_id)  # not the endpoint: it is the browser's address for pushes
    return {"id": sub_id}


@router.delete("/subscriptions", openapi_extra=audited("push.unsubscribe"),
               responses={**ok(PushUnsubscribed), **errors(404, 422)})
async def unsubscribe(body: PushUnsubscribe, relay: Relay = Depends(get_relay)) -> Any:
    """Removes the caller's subscription with this endpoint (the browser turned it off)."""
    return {"removed": await _push(relay).subscriptions.remove(_principal_id(), body.endpoint)}
