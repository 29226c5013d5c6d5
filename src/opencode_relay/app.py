"""Builds the ASGI app: routes, middleware and a lifespan that opens the relay's parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from . import hardening
from .api import (
    audit,
    changes,
    composer,
    events,
    export,
    files,
    history,
    meta,
    projects,
    providers,
    push,
    search,
    sessions,
    shared,
    shares,
    teams,
    terminal,
)
from .api.errors import error_response, install_error_handlers
from .config import Settings
from .metrics import Metrics
from .relay import Relay, open_relay
from .security.gate import Guard
from .webdist import WEB_DIST


class State(TypedDict):
    """What every request finds in `request.state` (Starlette's lifespan state)."""

    relay: Relay
    guard: Guard
    metrics: Metrics


def create_app(settings: Settings | None = None, *,
               transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The relay as an ASGI app. `transport` stands in for opencode's network (tests only)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_relay(settings, metrics, transport) as relay:
            metrics.track(relay)
            build_routes(app)
            yield {"relay": relay, "guard": relay.guard, "metrics": metrics}

    app = FastAPI(title="opencode-relay", version="0.1.0", lifespan=lifespan,
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    hardening.install(app, settings)  # auth gate, limits, CORS, login, /metrics, /readyz
    app.include_router(sessions.router)
    app.include_router(events.router)
    app.include_router(meta.router)
    app.include_router(providers.router)
    app.include_router(composer.router)
    app.include_router(history.router)
    app.include_router(changes.router)
    app.include_router(projects.router)
    app.include_router(terminal.router)
    app.include_router(files.router)
    app.include_router(push.router)
    app.include_router(audit.router)
    app.include_router(shares.router)
    app.include_router(export.router)
    app.include_router(shared.router)
    app.include_router(search.router)
    app.include_router(teams.router)
    _mount_web(app)
    return app


def build_routes(app: FastAPI) -> None:
    """Builds, at start, what FastAPI builds at the first request through each included router
    (every route's fields and dependencies: 0.3-0.6 s in all on a 2-core machine, paid by the
    first callers after each start or failover, up to 100 ms a request). Does nothing on a
    FastAPI that builds them when the router is included."""
    for route in app.router.routes:
        build = getattr(route, "effective_route_contexts", None)  # an included router
        if callable(build):
            for _context in build():
                pass


def _web_file(name: str, media_type: str, headers: dict[str, str]) -> object:
    path = WEB_DIST / name
    if not path.is_file():
        return error_response(404, "ui_not_built",
                              f"{name} is not built; run `make run` (or scripts/build-web.sh)")
    return FileResponse(path, media_type=media_type, headers=headers)


def _mount_web(app: FastAPI) -> None:
    index = WEB_DIST / "index.html"
    if (WEB_DIST / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=WEB_DIST / "assets"), name="assets")

    @app.get("/", include_in_schema=False)
    async def web_ui() -> object:
        if not index.is_file():
            return error_response(503, "ui_not_built",
                                  "the web UI is not built; run `make run` "
                                  "(or scripts/build-web.sh)")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    # The installable app's files live at the root: a service worker's scope is its folder.
    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> object:
        return _web_file("sw.js", "text/javascript; charset=utf-8",
                         {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})

    @app.get("/manifest.webmanifest", include_in_schema=False)
    async def manifest() -> object:
        return _web_file("manifest.webmanifest", "application/manifest+json",
                         {"Cache-Control": "no-cache"})

    @app.get("/healthz", include_in_schema=False)
    async def alive() -> JSONResponse:
        return JSONResponse({"status": "alive"})
