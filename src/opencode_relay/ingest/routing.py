"""Which session an opencode event belongs to, and which events are noise."""

from __future__ import annotations

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
    for candidate in (props.get("sessionID"),
                      _get(props, "info", "sessionID") if _get(props, "info", "role") else None,
                      _get(props, "info", "id")
                      if str(payload.get("type", "")).startswith("session.") else None,
                      _get(props, "part", "sessionID")):
        if isinstance(candidate, str) and candidate.startswith("ses"):
            return candidate
    return None


def _get(obj: dict[str, Any], *path: str) -> Any:
    found: Any = obj
    for key in path:
        if not isinstance(found, dict):
            return None
        found = found.get(key)
    return found
