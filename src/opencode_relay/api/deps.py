"""Route dependencies: the parts a route needs, from the lifespan's state.

Every dependency is `async def`, even one that never waits: FastAPI runs a plain `def` in its
thread pool, a thread hop per request (seen as 14% of the relay's CPU while 1,000 SSE clients
connected)."""

from __future__ import annotations

from fastapi import Request

from ..relay import Relay


async def get_relay(request: Request) -> Relay:
    relay: Relay = request.state.relay  # put there by the lifespan (app.State)
    return relay
