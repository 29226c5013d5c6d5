"""Production wiring: the gate, CORS, login (tokens and single sign-on), /metrics and /readyz,
installed when the app is built.

Kept apart from app.py so the app's shape stays readable. The parts they use (the gate's guard,
the metrics) come from the lifespan's state, built by relay.open_relay.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from .api import meta
from .api.audit import AuditTrail
from .config import Settings
from .errors import Forbidden
from .metrics import Metrics
from .security.gate import Gate, Guard
from .security.principal import current_principal
from .security.routes import router as login_router
from .security.sso_routes import router as sso_router

logger = logging.getLogger("opencode_relay")


def install(app: FastAPI, settings: Settings) -> None:
    app.include_router(login_router)
    app.include_router(sso_router)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", _ready, methods=["GET"], include_in_schema=False)
    # Inside the gate: records audited routes with the caller and request id the gate set.
    app.add_middleware(AuditTrail)
    # Added last = outermost: CORS preflights are answered before the gate asks for credentials.
    app.add_middleware(Gate)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list,
                           allow_credentials=True, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID",
                                          "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])


async def _metrics(request: Request) -> Response:
    guard: Guard = request.state.guard
    principal = current_principal()
    if guard.settings.auth_enabled and (principal is None or not principal.admin):
        raise Forbidden("metrics need an admin token")
    metrics: Metrics = request.state.metrics
    body = await metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _ready(request: Request) -> JSONResponse:
    """Public readiness: /api/health's verdict without versions or error details."""
    full = await meta.health(request.state.relay)
    body = json.loads(bytes(full.body))  # Response.body is bytes | memoryview
    opencode, redis = body.get("opencode", {}), body.get("redis", {})
    return JSONResponse({"status": body.get("status"),
                         "opencode": {"ok": opencode.get("ok"), "events": opencode.get("events")},
                         "redis": {"ok": redis.get("ok")}}, status_code=full.status_code)
