"""Graceful shutdown: SSE clients are told to reconnect before uvicorn waits for connections.

uvicorn's order on SIGTERM is: stop listening, wait for open connections (up to
timeout_graceful_shutdown), then run the app's lifespan shutdown. An SSE stream never ends by
itself, so without this hook every stream would hold shutdown for the whole timeout and then
be cut without a word. Here the hub ends each stream with a `relay.shutdown` event first; the
lifespan shutdown then writes what the ingestor already read and closes Redis and opencode;
last, the services `serve` embedded (Redis, opencode) are stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import Callable, Sequence

import uvicorn

from .fanout.hub import Hub

logger = logging.getLogger("opencode_relay")


class RelayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float = 3.0,
                 then_stop: Sequence[Callable[[], None]] = ()) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        # What the relay needed until its very end (the embedded Redis and opencode). Stopped
        # here, after the lifespan closed the relay, because uvicorn re-raises SIGTERM once it
        # returns, which would end the process before any `finally` of the caller.
        self.then_stop = then_stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What exists by now (modules, routes, the relay's parts) lives as long as the process:
        # out of the cyclic collector's sight. A full collection walked all of it (100,000
        # objects and more: 60-80 ms with the event loop stopped) every so often, mid-burst.
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while streams are told to go
        # The lifespan's state (app.State) holds the running relay; uvicorn keeps it.
        relay = self.lifespan.state.get("relay") if hasattr(self, "lifespan") else None
        if relay is not None:
            await end_streams(relay.hub, self.drain_seconds)
        await super().shutdown(sockets)
        for stop in self.then_stop:
            await asyncio.to_thread(stop)


async def end_streams(hub: Hub, wait_seconds: float) -> None:
    hub.close_all()
    deadline = asyncio.get_running_loop().time() + wait_seconds
    # The hub has no "last client gone" event; a short poll up to the deadline.
    while hub.client_count and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    logger.info("event streams ended for shutdown (%d still open)", hub.client_count)
