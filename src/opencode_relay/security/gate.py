"""The one middleware every HTTP request passes: request id, credentials, limits, timing.

Routes never check credentials themselves: everything under /api (but login/logout) and
/metrics needs a principal, so a route added later is closed by default. WebSockets pass the
same gate (loopback rule, token or login cookie), and their Origin must be the relay's own or
one of RELAY_CORS_ORIGINS whatever the credential: browsers apply no CORS to WebSockets.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.exceptions import RedisClusterException, RedisError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.errors import redis_failure, render
from ..config import Settings
from ..errors import (
    BodyTooLarge,
    CrossOrigin,
    LoopbackOnly,
    RateLimited,
    RelayError,
    Starting,
    Unauthenticated,
)
from ..hosts import is_loopback
from ..logs import reset_request_id, set_request_id
from .access import Access
from .limits import STREAM_RETRY_SECONDS, PromptLimiter, StreamSlots
from .principal import LOCAL, Principal, reset_principal, set_principal
from .tokens import TokenStore

logger = logging.getLogger("opencode_relay.access")

COOKIE = "ocr_session"
PUBLIC = frozenset({"/api/login", "/api/logout"})
# Route templates (as declared in api/) that the limits apply to; a test checks they exist.
PROMPT_ROUTES = frozenset({"/api/sessions/{sid}/messages", "/api/sessions/{sid}/prompt",
                           "/api/sessions/{sid}/command", "/api/sessions/{sid}/summarize"})
STREAM_ROUTES = frozenset({"/api/events", "/api/sessions/{sid}/events"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class Guard:
    settings: Settings
    tokens: TokenStore
    access: Access
    prompts: PromptLimiter
    streams: StreamSlots


def needs_credential(path: str) -> bool:
    if path in PUBLIC:
        return False
    return path == "/api" or path.startswith("/api/") or path == "/metrics"


def is_loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return True  # in-process callers (tests, ASGI transports) have no socket
    host: str = client[0]
    return host == "testclient" or is_loopback(host)


def route_of(scope: Scope) -> str:
    """The matched route's template (never the raw path: label counts must stay bounded).
    Known once the router has run."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


def _compile(templates: frozenset[str]) -> list[re.Pattern[str]]:
    return [compile_path(t)[0] for t in templates]


_PROMPT_PATHS = _compile(PROMPT_ROUTES)
_STREAM_PATHS = _compile(STREAM_ROUTES)


def _is(path: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(p.match(path) for p in patterns)


class Gate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        id_token = set_request_id(request_id)
        state = scope.get("state") or {}
        metrics = state.get("metrics")
        status = [500]
        responded = [False]
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                responded[0] = True
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        principal: Principal | None = None
        try:
            try:
                principal = await self._admit(scope, receive, send_with_id, headers,
                                              state.get("guard"))
            except RelayError as exc:
                await render(exc)(scope, receive, send_with_id)
            except (RedisError, RedisClusterException, OSError) as exc:
                # Credentials and limits live in Redis: down means 503 here too, not a 500.
                if responded[0]:
                    raise
                await redis_failure(exc)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            if metrics is not None:
                metrics.observe_request(scope["method"], route, status[0], elapsed)
            logger.info("%s %s -> %d", scope["method"], scope["path"], status[0],
                        extra={"method": scope["method"], "route": route, "status": status[0],
                               "duration_ms": round(elapsed * 1000, 1),
                               "principal": principal.id if principal else None})
            reset_request_id(id_token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admits a WebSocket handshake, or refuses it with the HTTP answer any request would
        get (the ASGI denial-response extension; a bare close where the server lacks it)."""
        headers = _headers(scope)
        principal: Principal | None = None
        refusal = None
        try:
            principal = await _admit_websocket(scope, headers,
                                               (scope.get("state") or {}).get("guard"))
        except RelayError as exc:
            refusal = render(exc)
        except (RedisError, RedisClusterException, OSError) as exc:
            refusal = redis_failure(exc)
        if refusal is not None:
            logger.info("WS %s -> %d", scope["path"], refusal.status_code,
                        extra={"method": "WS", "route": route_of(scope),
                               "status": refusal.status_code})
            if "websocket.http.response" in scope.get("extensions", {}):
                await refusal(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        token = set_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_principal(token)

    async def _admit(self, scope: Scope, receive: Receive, send: Send,
                     headers: dict[str, str], guard: Guard | None) -> Principal | None:
        if guard is None:  # the lifespan has not run: nothing is connected yet
            raise Starting()
        settings = guard.settings
        if settings.loopback_only and not is_loopback_client(scope):
            raise LoopbackOnly()
        method = scope["method"]
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > settings.max_body_bytes:
            raise BodyTooLarge(settings.max_body_bytes)

        # With auth on, public paths run with no principal: access checks there deny.
        principal: Principal | None = None if settings.auth_enabled else LOCAL
        if settings.auth_enabled and needs_credential(scope["path"]):
            principal = await _authenticate(guard, headers, method)
        if method in _BODY_METHODS:
            receive = await _buffer_body(receive, settings.max_body_bytes)

        slot = None
        if settings.auth_enabled and principal is not None:
            if method == "POST" and _is(scope["path"], _PROMPT_PATHS):
                wait = await guard.prompts.hit(principal.id)
                if wait is not None:
                    _count_limited(scope, "prompts")
                    raise RateLimited("prompts", wait)
            if method == "GET" and _is(scope["path"], _STREAM_PATHS):
                slot = await guard.streams.acquire(principal.id)
                if slot is None:
                    _count_limited(scope, "streams")
                    raise RateLimited("open event streams", STREAM_RETRY_SECONDS)
        token = set_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_principal(token)
            if slot is not None:
                await guard.streams.release(slot)
        return principal


async def _admit_websocket(scope: Scope, headers: dict[str, str],
                           guard: Guard | None) -> Principal | None:
    if guard is None:
        raise Starting()
    settings = guard.settings
    if settings.loopback_only and not is_loopback_client(scope):
        raise LoopbackOnly()
    if not _same_origin(headers, settings):
        raise CrossOrigin("WebSocket from another origin refused (not in RELAY_CORS_ORIGINS)")
    if not settings.auth_enabled:
        return LOCAL
    if not needs_credential(scope["path"]):
        return None
    return await _authenticate(guard, headers, "GET")


async def recheck(guard: Guard, headers: dict[str, str]) -> Principal:
    """The principal the credential of a long-lived connection (its handshake's headers) still
    stands for; raises Unauthenticated once the token is revoked or the login ended."""
    if not guard.settings.auth_enabled:
        return LOCAL
    return await _authenticate(guard, headers, "GET")


async def _authenticate(guard: Guard, headers: dict[str, str], method: str) -> Principal:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        principal = (await guard.tokens.resolve(secret.strip())
                     if scheme.lower() == "bearer" else None)
        if principal is None:
            raise Unauthenticated("the API token is not valid")
        return principal
    cookie = _cookies(headers).get(COOKIE)
    if cookie:
        principal = await guard.tokens.resolve_login(cookie)
        if principal is None:
            raise Unauthenticated("the login has expired or was revoked; log in again")
        if method not in _SAFE_METHODS and not _same_origin(headers, guard.settings):
            raise CrossOrigin("cross-origin request refused")
        return principal
    raise Unauthenticated()


def _same_origin(headers: dict[str, str], settings: Settings) -> bool:
    """Cookie-authenticated writes must come from our own page (SameSite covers most; this
    also covers sibling origins of the same site)."""
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser cross-origin request: browsers always send Origin on those
    if origin.rstrip("/") in settings.cors_origin_list:
        return True
    return urlsplit(origin).netloc == headers.get("host", "")


async def _buffer_body(receive: Receive, limit: int) -> Receive:
    """Reads the body up front so a chunked body over the limit is refused before any work."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge(limit)
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _count_limited(scope: Scope, which: str) -> None:
    metrics = (scope.get("state") or {}).get("metrics")
    if metrics is not None:
        metrics.on_rate_limited(which)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in headers.get("cookie", "").split(";"):
        name, _, value = item.strip().partition("=")
        if name:
            found[name] = value
    return found
