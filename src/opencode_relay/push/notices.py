"""Which ingested events deserve a notification, and what it says.

`Detector.notice_of(event)` is called for every event the ingesting replica writes; it keeps
when each session went busy, to tell a finished turn (busy → idle after at least N seconds).
`payload()` is what reaches the browser: a title, a short excerpt and where to go. Nothing else
(no tool input, no command line, no message text but a question's own words).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from cachetools import LRUCache

from .. import events as event_types
from .vapid import b64url

Kind = Literal["permission", "question", "idle", "error"]
JSON = dict[str, Any]

EXCERPT_CHARS = 120
TITLE_CHARS = 60
# The person stopped it, or the relay did after provider retries (it says why in the session).
_QUIET_ERRORS = frozenset({"MessageAbortedError"})


@dataclass(frozen=True)
class Notice:
    kind: Kind
    session_id: str
    claim: str          # one send per claim across replicas (push_sent key)
    excerpt: str = ""   # already short
    request_id: str | None = None
    seconds: float | None = None  # how long the turn ran (idle)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


class Detector:
    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic,
                 sessions: int = 50_000) -> None:
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._busy_since: LRUCache[str, float] = LRUCache(maxsize=sessions)
        # Sessions the relay is stopping (`stopping`): the end of their turn is not news, the
        # failure the relay reports is (opencode may say idle before the abort's answer).
        self._stopped: LRUCache[str, bool] = LRUCache(maxsize=sessions)

    def notice_of(self, event: JSON) -> Notice | None:
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return None
        kind, props = payload.get("type"), payload.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("sessionID"), str):
            return None
        sid: str = props["sessionID"]
        event_id = str(payload.get("id") or f"{sid}:{self.clock()}")
        if kind == "permission.asked" and isinstance(props.get("id"), str):
            return Notice("permission", sid, f"permission:{props['id']}",
                          shorten(f"Wants to use {props.get('permission') or 'a tool'}",
                                  EXCERPT_CHARS), request_id=props["id"])
        if kind in ("question.asked", "question.v2.asked") and isinstance(props.get("id"), str):
            questions = props.get("questions")
            first = questions[0] if isinstance(questions, list) and questions else {}
            text = first.get("question") if isinstance(first, dict) else None
            return Notice("question", sid, f"question:{props['id']}",
                          shorten(str(text or "A question is waiting"), EXCERPT_CHARS),
                          request_id=props["id"])
        if kind == event_types.SESSION_STATUS_CHANGED:
            status = props.get("status")
            state = status.get("type") if isinstance(status, dict) else None
            if state in ("busy", "retry"):
                self._busy_since.setdefault(sid, self.clock())
                return None
            if state == "idle":
                return self._finished(sid, event_id)
            return None
        if kind == event_types.SESSION_IDLE:
            return self._finished(sid, event_id)
        if kind == event_types.SESSION_ERROR:
            self._busy_since.pop(sid, None)  # the error says it; no "finished" after it
            error = props.get("error")
            name = error.get("name") if isinstance(error, dict) else None
            if name in _QUIET_ERRORS:
                return None
            data = error.get("data") if isinstance(error, dict) else None
            message = data.get("message") if isinstance(data, dict) else None
            return Notice("error", sid, f"error:{event_id}",
                          shorten(str(message or name or "The session failed"), EXCERPT_CHARS))
        return None

    def stopping(self, sid: str) -> None:
        """The relay is about to abort `sid` (ingest/retry_guard.py): no "finished" for the
        turn it ends, whichever comes first, its idle or the failure."""
        self._stopped[sid] = True

    def failure(self, sid: str, message: str) -> Notice:
        """A failure the relay itself found (the provider unreachable): an error notice."""
        self._busy_since.pop(sid, None)
        return Notice("error", sid, f"failed:{sid}:{self.clock()}",
                      shorten(message, EXCERPT_CHARS))

    def _finished(self, sid: str, event_id: str) -> Notice | None:
        started = self._busy_since.pop(sid, None)  # session.status idle and session.idle: once
        if self._stopped.pop(sid, False) or started is None:
            return None
        took = self.clock() - started
        if took < self.idle_seconds:
            return None
        return Notice("idle", sid, f"idle:{event_id}", f"Finished after {_duration(took)}",
                      seconds=took)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


_TITLES: dict[str, str] = {"permission": "Permission needed", "question": "Question",
                           "idle": "Done", "error": "Error"}


def payload(notice: Notice, session_title: str | None, open_session: str) -> JSON:
    """The notification's JSON. `open_session` is the session to open: for a sub-agent's
    request its top-level ancestor, the one the person watches (its requests show there)."""
    title = shorten(session_title or "", TITLE_CHARS) or "opencode session"
    tag = f"{notice.kind}:{notice.request_id or open_session}"
    return {"title": f"{_TITLES[notice.kind]}: {title}", "body": notice.excerpt,
            "url": f"/?session={quote(open_session, safe='')}", "tag": tag,
            "kind": notice.kind, "sessionID": open_session}


def topic(tag: str) -> str:
    """RFC 8030 `Topic` (at most 32 base64url characters) for a notification tag."""
    return b64url(hashlib.sha256(tag.encode()).digest())[:32]


def encode(body: JSON) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
