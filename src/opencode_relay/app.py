"""Builds the ASGI app: the one place where the relay's parts are put together."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from . import hardening
from .api import events, meta, sessions
from .api.errors import error_response, install_error_handlers
from .config import Settings
from .relay import Relay

WEB_DIST = Path(__file__).parent / "web" / "dist"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay = Relay.build(settings)
        app.state.relay = relay
        await relay.start()
        try:
            async with hardening.running(app, relay):
                yield
        finally:
            await relay.stop()

    app = FastAPI(title="opencode-relay", version="0.1.0", lifespan=lifespan,
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    hardening.install(app, settings)  # auth gate, limits, CORS, login, /metrics, /readyz
    app.include_router(sessions.router)
    app.include_router(events.router)
    app.include_router(meta.router)
    _mount_web(app)
    return app


def _mount_web(app: FastAPI) -> None:
    index = WEB_DIST / "index.html"
    if (WEB_DIST / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=WEB_DIST / "assets"), name="assets")

    @app.get("/", include_in_schema=False)
    async def web_ui() -> object:
        if not index.is_file():
            return error_response(503, "ui_not_built",
                                  "the web UI is not built; run `make run` (or scripts/build-web.sh)")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", include_in_schema=False)
    async def alive() -> JSONResponse:
        return JSONResponse({"status": "alive"})
