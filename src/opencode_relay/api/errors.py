"""The one place that turns failures into HTTP answers: `{"error": {"code", "message"}}`.

Domain errors (errors.py), opencode's and Redis' failures and FastAPI's validation errors all
end here; nothing else in the relay picks a status code for a failure.
"""

from __future__ import annotations

import html
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from ..errors import (
    AttachmentTooLarge,
    BodyTooLarge,
    Busy,
    Forbidden,
    InputRefused,
    InvalidInput,
    MessageIdTaken,
    NotFound,
    ProviderFailed,
    ProviderUnavailable,
    RateLimited,
    RelayError,
    SessionEnded,
    SignInRefused,
    SignInStateInvalid,
    Starting,
    Stopping,
    Unauthenticated,
    UnsupportedMediaType,
    UpstreamError,
    UpstreamUnavailable,
)

logger = logging.getLogger("opencode_relay.api")


_STATUS: dict[type[RelayError], int] = {
    InvalidInput: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Busy: 409,
    MessageIdTaken: 409,
    BodyTooLarge: 413, AttachmentTooLarge: 413, UnsupportedMediaType: 415, RateLimited: 429,
    Starting: 503, Stopping: 503, UpstreamUnavailable: 503,
    SignInStateInvalid: 400, SignInRefused: 401, ProviderFailed: 502, ProviderUnavailable: 503,
}


def status_of(exc: RelayError) -> int:
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 500


def render(exc: RelayError) -> JSONResponse:
    """The HTTP answer for a domain error; for routes and middleware alike."""
    if isinstance(exc, UpstreamError):
        return _opencode_refused(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    return error_response(status_of(exc), exc.code, exc.message, headers or None)


def _opencode_refused(exc: UpstreamError) -> JSONResponse:
    """opencode's own error answer: its 404 and 4xx are the caller's; anything else is ours."""
    if exc.status == 404:
        return error_response(404, "not_found", f"opencode: {exc.message}")
    if exc.status in (400, 422):
        return error_response(400, "rejected_by_opencode", f"opencode: {exc.message}")
    return error_response(502, "opencode_error", f"opencode answered {exc.status}: {exc.message}")


# WebSocket close codes (RFC 6455 section 7.4) for failures after a socket was accepted; before
# that, a refused WebSocket gets the same HTTP answer as any request (`render`).
GOING_AWAY, POLICY_VIOLATION, MESSAGE_TOO_BIG, INTERNAL_ERROR, TRY_AGAIN_LATER, BAD_GATEWAY = (
    1001, 1008, 1009, 1011, 1013, 1014)
_MAX_REASON_BYTES = 123  # a close frame's reason must fit in its 125-byte payload


def close_of(exc: Exception) -> tuple[int, str]:
    """The close code and reason that end an accepted WebSocket because of `exc`."""
    if isinstance(exc, Stopping):
        code = GOING_AWAY
    elif isinstance(exc, InputRefused):
        code = MESSAGE_TOO_BIG if exc.too_big else POLICY_VIOLATION
    elif isinstance(exc, SessionEnded | Forbidden | Unauthenticated | NotFound):
        code = POLICY_VIOLATION
    elif isinstance(exc, UpstreamUnavailable | UpstreamError):
        code = BAD_GATEWAY
    elif isinstance(exc, RedisError | RedisClusterException | OSError | Starting):
        code = TRY_AGAIN_LATER
    else:
        code = INTERNAL_ERROR
    if isinstance(exc, RelayError):
        reason = exc.message
    elif isinstance(exc, RedisError | RedisClusterException | OSError):
        reason = "Redis is unreachable"
    else:
        reason = "the relay hit an unexpected error"
    encoded = reason.encode()
    if len(encoded) > _MAX_REASON_BYTES:
        reason = encoded[:_MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
    return code, reason


def redis_failure(exc: Exception) -> JSONResponse:
    """Redis down (503) or refusing a command (502); for routes and middleware alike."""
    return error_response(*_redis_failure(exc))


def _redis_failure(exc: Exception) -> tuple[int, str, str]:
    """A cluster that serves no node for a slot (a failover under way) or is down counts as
    unreachable."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError,
                        RedisClusterException)):
        return 503, "redis_unavailable", "Redis is unreachable"
    logger.error("redis command failed: %s", exc)
    return 502, "redis_error", "Redis refused a command"


_PAGE_TITLES = {400: "This sign-in cannot be finished", 401: "Sign-in refused",
                404: "Single sign-on is off", 502: "The identity provider failed",
                503: "Cannot sign in right now"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer">
<title>{title} - opencode relay</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:12vh auto;padding:0 1rem}}
code{{color:#666}}</style></head>
<body><main data-testid="sign-in-error" data-code="{code}"><h1>{title}</h1>
<p data-testid="sign-in-error-message">{message}</p><p><code>{code}</code> (HTTP {status})</p>
<p><a href="/" data-testid="sign-in-again">Back to the sign-in page</a></p></main></body></html>
"""


def error_page(exc: Exception) -> HTMLResponse:
    """The HTML answer for a failure of a page the browser navigates to (single sign-on):
    the same status and code as the JSON answer would carry, readable by a person."""
    if isinstance(exc, RelayError):
        status, code, message = status_of(exc), exc.code, exc.message
    else:  # Redis (the sign-in's state and the login live there)
        status, code, message = _redis_failure(exc)
    title = _PAGE_TITLES.get(status, "Sign-in failed")
    body = _PAGE.format(title=title, code=html.escape(code), message=html.escape(message),
                        status=status)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def _names_something(exc: RequestValidationError) -> bool:
    """True when every problem is with an id in the path or a `directory`: a request that
    names something unusable (400), rather than one that is malformed (422)."""
    problems = exc.errors()
    return bool(problems) and all(
        err.get("loc", ("",))[0] == "path" or err.get("loc", ("",))[-1] == "directory"
        for err in problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RelayError)
    async def _relay(_: Request, exc: RelayError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if _names_something(exc):  # a bad id (as ids.check_id answers) or directory
            return error_response(400, "bad_request", _describe_validation(exc))
        return error_response(422, "invalid_request", _describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            message = f"no route for {request.method} {request.url.path}"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RedisError)
    async def _redis(_: Request, exc: RedisError) -> JSONResponse:
        return redis_failure(exc)

    @app.exception_handler(RedisClusterException)  # not a RedisError, in redis-py
    async def _cluster(_: Request, exc: RedisClusterException) -> JSONResponse:
        return redis_failure(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "the relay hit an unexpected error")
