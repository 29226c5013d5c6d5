"""Graceful shutdown: SSE clients are told to reconnect before uvicorn waits for connections.

uvicorn's order on SIGTERM is: stop listening, wait for open connections (up to
timeout_graceful_shutdown), then run the app's lifespan shutdown. An SSE stream never ends by
itself, so without this hook every stream would hold shutdown for the whole timeout and then
be cut without a word. Here the hub ends each stream with a `relay.shutdown` event first; the
lifespan shutdown then writes what the ingestor already read and closes Redis and opencode.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger("opencode_relay")


class RelayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float = 3.0) -> None:
        super().__init__(config)
        self.app = app
        self.drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while streams are told to go
        await end_streams(self.app, self.drain_seconds)
        await super().shutdown(sockets)


async def end_streams(app: FastAPI, wait_seconds: float) -> None:
    relay = getattr(app.state, "relay", None)
    if relay is None:
        return
    relay.hub.close_all()
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while relay.hub.client_count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    logger.info("event streams ended for shutdown (%d still open)", relay.hub.client_count)
