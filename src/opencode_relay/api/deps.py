"""Route dependencies: the parts a route needs, from the lifespan's state."""

from __future__ import annotations

from fastapi import Request

from ..relay import Relay


def get_relay(request: Request) -> Relay:
    relay: Relay = request.state.relay  # put there by the lifespan (app.State)
    return relay
