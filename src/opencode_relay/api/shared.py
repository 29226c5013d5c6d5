"""What a share link opens, and nothing else: `/share/<token>` (the app, read-only),
`/share/<token>/session` (the session and its transcript), `/share/<token>/events` (its live
events, resumable).

These paths are outside /api, so the gate asks no credential for them; the token in the path is
the only thing they read. A caller's own login cookie or API token neither widens nor narrows
what a link shows (nothing here looks at the principal), and the token opens no other route: it
is not an API token, so /api refuses it with 401. What a link shows: the shared session's own
transcript, and the events of the session's stream, which carry its sub-agent (`task`) sessions'
progress as the owner's page shows it while it runs; the sub-agent transcripts, the session
list, prompts, answers to requests, files and terminals stay behind /api.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from html import escape

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from ..errors import RateLimited, ShareNotFound
from ..fanout.stream import event_stream
from ..relay import Relay
from ..security.gate import Guard
from ..security.limits import STREAM_RETRY_SECONDS
from ..shares import Share
from ..store.state import dumps
from ..webdist import WEB_DIST
from .deps import get_relay
from .events import RESUME, SSE_HEADERS, _resume_point
from .sessions import _transcript

router = APIRouter(prefix="/share", include_in_schema=False)

# A live stream checks every this many seconds that its link was not revoked meanwhile.
RECHECK_SECONDS = 5.0
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Robots-Tag": "noindex, nofollow"}
Token = Path(min_length=1, max_length=300)


async def _share(relay: Relay, token: str) -> Share:
    share = await relay.shares.resolve(token)
    if await relay.store.get_session(share.session_id) is None:
        raise ShareNotFound()  # deleted (pruned sessions keep their links: read back first)
    return share


@router.get("/{token}")
async def page(request: Request, token: str = Token,
               relay: Relay = Depends(get_relay)) -> Response:
    try:
        await _share(relay, token)
    except ShareNotFound as exc:
        return HTMLResponse(_gone_page(exc.message), status_code=404, headers=PRIVATE)
    index = WEB_DIST / "index.html"
    if not index.is_file():
        return HTMLResponse(_gone_page("the web UI is not built"), status_code=503)
    return FileResponse(index, headers=PRIVATE)


@router.get("/{token}/session")
async def shared_session(token: str = Token, relay: Relay = Depends(get_relay)) -> Response:
    share = await _share(relay, token)
    sid = share.session_id
    found = await relay.store.get_sessions_raw([sid])
    if not found:
        raise ShareNotFound()
    session = found[0]
    records, cursor = await relay.sessions.transcript(sid)
    status = await relay.store.read_json(relay.keys.status(sid)) or {"type": "idle"}
    head = dumps({"share": {"id": share.id, "expiresAt": share.public()["expiresAt"]},
                  "status": status})
    # The stored session and transcript pass through as they are (sessions.py does the same).
    body = (head[:-1] + b',"session":' + session + b","
            + _transcript(records, str(cursor))[1:])
    return Response(body, media_type="application/json", headers=PRIVATE)


@router.get("/{token}/events")
async def shared_events(request: Request, token: str = Token,
                        after: str | None = Query(None, max_length=50, json_schema_extra=RESUME),
                        last_event_id: str | None = Header(None, max_length=50),
                        relay: Relay = Depends(get_relay)) -> StreamingResponse:
    resume = _resume_point(last_event_id, after)
    share = await _share(relay, token)
    guard: Guard = request.state.guard
    slot = await guard.streams.acquire(f"share:{share.id}")
    if slot is None:
        raise RateLimited("open event streams of this share link", STREAM_RETRY_SECONDS)
    sid = share.session_id
    stream = event_stream(relay.hub, relay.log, relay.keys.session_events(sid), sid, resume,
                          relay.settings.heartbeat_seconds)

    async def while_shared() -> AsyncIterator[bytes]:
        checked = time.monotonic()
        try:
            async for chunk in stream:
                if time.monotonic() - checked > RECHECK_SECONDS:
                    try:
                        await _share(relay, token)
                    except ShareNotFound:
                        return  # revoked or expired: the viewer's next connect gets the 404
                    checked = time.monotonic()
                yield chunk
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await guard.streams.release(slot)

    return StreamingResponse(while_shared(), media_type="text/event-stream",
                             headers={**SSE_HEADERS, **PRIVATE})


def _gone_page(message: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"referrer\" content=\"no-referrer\"><title>Share link not found</title>"
            "</head><body style=\"font-family: system-ui, sans-serif; margin: 3rem\">"
            "<h1>Share link not found</h1>"
            f"<p data-testid=\"share-gone\">{escape(message[:1].upper() + message[1:])}.</p>"
            "</body></html>")
