"""Which session an opencode event belongs to, and which events are noise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..events import NOISE, NOT_LOGGED

__all__ = ["NOISE", "NOT_LOGGED", "session_id_of"]


def session_id_of(payload: dict[str, Any]) -> str | None:
    """The session an event is about, wherever opencode put it."""
    if payload.get("type") in NOISE:
        return None
    props = payload.get("properties")
    if not isinstance(props, dict):
        return None
    found = props.get("sessionID")  # most events (every delta) say it here: looked at first
    if isinstance(found, str) and found.startswith("ses"):
        return found
    for candidate in _elsewhere(payload, props):
        if isinstance(candidate, str) and candidate.startswith("ses"):
            return candidate
    return None


def _elsewhere(payload: dict[str, Any], props: dict[str, Any]) -> Iterator[Any]:
    """The other places opencode puts an event's session, in order, each looked at lazily."""
    if _get(props, "info", "role"):
        yield _get(props, "info", "sessionID")
    if str(payload.get("type", "")).startswith("session."):
        yield _get(props, "info", "id")
    yield _get(props, "part", "sessionID")


def _get(obj: dict[str, Any], *path: str) -> Any:
    found: Any = obj
    for key in path:
        if not isinstance(found, dict):
            return None
        found = found.get(key)
    return found
