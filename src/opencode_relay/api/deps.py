"""Route dependencies: the one Relay object of the app."""

from __future__ import annotations

from fastapi import Request

from ..relay import Relay


def get_relay(request: Request) -> Relay:
    return request.app.state.relay
