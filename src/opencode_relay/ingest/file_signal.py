"""Tells a working session's stream that files changed in its directory.

opencode's file events (`file.edited` when a tool writes a file, `file.watcher.updated` for any
change the watcher sees) name a file and, on the global stream, the directory, never a session.
So they stay on the global log (events.NOISE), and each batch of them becomes one
`relay.files.changed` notice per session that is busy in that directory: a session's stream
hears of changes while its agent works, at most once per ingested batch, and never of the
churn of idle directories.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .. import events as event_types
from ..store.state import JSON

MAX_FILES = 50  # files named in one notice; `more` counts the rest


class FileSignal:
    def __init__(self) -> None:
        self._busy: dict[str, set[str]] = {}  # directory → its busy sessions
        self._where: dict[str, str] = {}  # busy session → its directory

    def reset(self, busy_by_directory: Mapping[str, Iterable[str]]) -> None:
        """Starts over from opencode's statuses (after a reconnect)."""
        self._busy.clear()
        self._where.clear()
        for directory, sids in busy_by_directory.items():
            for sid in sids:
                self._set(sid, directory, busy=True)

    def notices(self, events: Iterable[JSON]) -> list[JSON]:
        """Follows the statuses in a batch of `{directory, payload}` events, and returns the
        notices for its file events."""
        changed: dict[str, list[str]] = {}  # busy session → the files changed in its directory
        for event in events:
            directory, payload = event.get("directory"), event.get("payload")
            if not isinstance(payload, dict) or not isinstance(directory, str):
                continue
            kind, props = payload.get("type"), payload.get("properties")
            if not isinstance(props, dict):
                continue
            sid = props.get("sessionID")
            if kind == event_types.SESSION_STATUS_CHANGED and isinstance(sid, str):
                status = props.get("status")
                busy = isinstance(status, dict) and status.get("type") != "idle"
                self._set(sid, directory, busy)
            elif kind == event_types.SESSION_IDLE and isinstance(sid, str):
                self._set(sid, directory, busy=False)
            elif kind == event_types.SESSION_DELETED:
                info = props.get("info")
                if isinstance(info, dict) and isinstance(info.get("id"), str):
                    self._set(info["id"], directory, busy=False)
            elif kind in event_types.FILE_EVENTS and isinstance(props.get("file"), str):
                # Busy as the file changed: a session that turns idle later in the batch
                # still hears of it.
                for busy_sid in self._busy.get(directory, ()):
                    files = changed.setdefault(busy_sid, [])
                    if props["file"] not in files:
                        files.append(props["file"])
        return [{"type": event_types.RELAY_FILES_CHANGED,
                 "properties": {"sessionID": sid, "files": files[:MAX_FILES],
                                "more": max(0, len(files) - MAX_FILES)}}
                for sid, files in sorted(changed.items())]

    def _set(self, sid: str, directory: str, busy: bool) -> None:
        before = self._where.pop(sid, None)
        if before is not None:
            self._busy[before].discard(sid)
            if not self._busy[before]:
                del self._busy[before]
        if busy:
            self._where[sid] = directory
            self._busy.setdefault(directory, set()).add(sid)
