"""Route dependencies: the parts a route needs, from the lifespan's state."""

from __future__ import annotations

from fastapi import Request

from ..relay import Relay
from ..session_service import SessionService


def get_relay(request: Request) -> Relay:
    return request.state.relay


def get_sessions(request: Request) -> SessionService:
    return request.state.relay.sessions
