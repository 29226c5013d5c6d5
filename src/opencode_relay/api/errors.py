"""The one place that turns failures into HTTP answers: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from ..store.log import InvalidEventId
from ..upstream.client import UpstreamError, UpstreamUnavailable

logger = logging.getLogger("opencode_relay.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def unauthorized(message: str = "a valid API token or login is required") -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def rate_limited(what: str, retry_after_seconds: int) -> ApiError:
    return ApiError(429, "rate_limited", f"too many {what}; retry in {retry_after_seconds}s",
                    {"Retry-After": str(retry_after_seconds)})


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes")


def render(exc: ApiError) -> JSONResponse:
    """For code outside the routes (middleware), which the handlers below do not reach."""
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def redis_failure(exc: Exception) -> JSONResponse:
    """Redis down (503) or refusing a command (502); for routes and middleware alike."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        return error_response(503, "redis_unavailable", "Redis is unreachable")
    logger.error("redis command failed: %s", exc)
    return error_response(502, "redis_error", "Redis refused a command")


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident!r} was not found")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


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


def _in_path_only(exc: RequestValidationError) -> bool:
    problems = exc.errors()
    return bool(problems) and all(err.get("loc", ("",))[0] == "path" for err in problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if _in_path_only(exc):  # a malformed id: the same 400 as relay.check_id gives
            return error_response(400, "bad_request", _describe_validation(exc))
        return error_response(422, "invalid_request", _describe_validation(exc))

    @app.exception_handler(InvalidEventId)
    async def _event_id(_: Request, exc: InvalidEventId) -> JSONResponse:
        return error_response(400, "bad_event_id", str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            message = f"no route for {request.method} {request.url.path}"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(UpstreamUnavailable)
    async def _upstream_down(_: Request, exc: UpstreamUnavailable) -> JSONResponse:
        return error_response(503, "opencode_unavailable", str(exc))

    @app.exception_handler(UpstreamError)
    async def _upstream(_: Request, exc: UpstreamError) -> JSONResponse:
        if exc.status == 404:
            return error_response(404, "not_found", f"opencode: {exc.message}")
        if exc.status in (400, 422):
            return error_response(400, "rejected_by_opencode", f"opencode: {exc.message}")
        return error_response(502, "opencode_error",
                              f"opencode answered {exc.status}: {exc.message}")

    @app.exception_handler(RedisError)
    async def _redis(_: Request, exc: RedisError) -> JSONResponse:
        return redis_failure(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "the relay hit an unexpected error")
