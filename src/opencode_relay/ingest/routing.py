"""Which session an opencode event belongs to, and which events are noise."""

from __future__ import annotations

from typing import Any

# Transport chatter: never logged (the relay sends its own heartbeats).
NOT_LOGGED = frozenset({"server.heartbeat", "server.connected"})

# Logged on the global stream only, never routed to a session's stream even if they name one.
NOISE = frozenset({"plugin.added", "sync", "catalog.updated", "reference.updated",
                   "integration.updated", "lsp.updated", "lsp.client.diagnostics",
                   "file.watcher.updated"})


def session_id_of(payload: dict[str, Any]) -> str | None:
    """The session an event is about, wherever opencode put it."""
    if payload.get("type") in NOISE:
        return None
    props = payload.get("properties")
    if not isinstance(props, dict):
        return None
    for candidate in (props.get("sessionID"),
                      _get(props, "info", "sessionID") if _get(props, "info", "role") else None,
                      _get(props, "info", "id") if str(payload.get("type", "")).startswith("session.")
                      else None,
                      _get(props, "part", "sessionID")):
        if isinstance(candidate, str) and candidate.startswith("ses"):
            return candidate
    return None


def _get(obj: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
