"""Production wiring: the gate, CORS, login, /metrics, /readyz, and their background tasks.

Kept apart from app.py so the app's shape stays readable: `install` when the app is built,
`running` around its lifetime.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from .api import meta
from .api.errors import forbidden
from .config import Settings
from .metrics import Metrics
from .relay import Relay
from .retention import Retention
from .security.gate import Gate, Guard
from .security.limits import PromptLimiter, StreamSlots
from .security.principal import current_principal
from .security.routes import router as login_router
from .security.tokens import TokenStore

logger = logging.getLogger("opencode_relay")


def install(app: FastAPI, settings: Settings) -> None:
    app.state.metrics = Metrics()
    app.include_router(login_router)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", _ready, methods=["GET"], include_in_schema=False)
    # Added last = outermost: CORS preflights are answered before the gate asks for credentials.
    app.add_middleware(Gate)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list,
                           allow_credentials=True, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID",
                                          "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])


@asynccontextmanager
async def running(app: FastAPI, relay: Relay) -> AsyncIterator[None]:
    settings = relay.settings
    streams = StreamSlots(relay.redis, relay.keys, settings.streams_per_principal,
                          settings.stream_slot_ttl_seconds)
    app.state.guard = Guard(settings, TokenStore(relay.redis, relay.keys), relay.access,
                            PromptLimiter(relay.redis, relay.keys, settings.prompts_per_minute),
                            streams)
    app.state.metrics.attach(relay)
    streams.start()
    tasks: list[asyncio.Task[None]] = []
    if settings.prune_interval_seconds > 0:
        retention = Retention(relay.redis, relay.keys, relay.store, settings.session_idle_seconds,
                              settings.log_max_age_seconds, app.state.metrics.pruned.inc)
        tasks.append(asyncio.create_task(retention.run_forever(settings.prune_interval_seconds)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await streams.stop()


async def _metrics(request: Request) -> Response:
    guard: Guard = request.app.state.guard
    principal = current_principal()
    if guard.settings.auth_enabled and (principal is None or not principal.admin):
        raise forbidden("metrics need an admin token")
    body = await request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _ready(request: Request) -> JSONResponse:
    """Public readiness: /api/health's verdict without versions or error details."""
    full = await meta.health(request.app.state.relay)
    body = json.loads(full.body)
    opencode, redis = body.get("opencode", {}), body.get("redis", {})
    return JSONResponse({"status": body.get("status"),
                         "opencode": {"ok": opencode.get("ok"), "events": opencode.get("events")},
                         "redis": {"ok": redis.get("ok")}}, status_code=full.status_code)
