"""The audit log: who changed what, when, and how it ended, in one Redis Stream.

Every state-changing route declares its action (`openapi_extra=audited("session.rename")`); the
`api.audit.AuditTrail` middleware writes one entry per such request once its status is known
(before the answer leaves, so a caller's next read finds it). A route adds what only it knows
(a new session's id, a prompt's length) with `note(...)`. Operator commands (`opencode-relay
token …`) call `AuditLog.record` themselves, as principal "cli".

An entry: time, principal, team (the name of the session's team, or of the team managed),
action, target, session, request id, outcome ("ok", "refused" for 4xx, "failed" for 5xx), the
HTTP status and a small `detail`. Secrets never go in: no tokens, cookies, passwords, API keys
or prompt text (only its length). The stream is capped (XADD MAXLEN ~) and trimmed by age by
`retention.Retention`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from redis.asyncio import Redis

from .errors import InvalidInput
from .store.connect import transaction
from .store.keys import Keys
from .store.replies import entries, text

logger = logging.getLogger("opencode_relay.audit")

Outcome = Literal["ok", "refused", "failed"]

# Every action the relay records; a test checks each is declared by a route or the CLI.
ACTIONS = frozenset({
    "auth.login", "auth.logout", "token.create", "token.revoke",
    "session.create", "session.rename", "session.delete", "session.fork",
    "session.revert", "session.unrevert", "session.summarize",
    "session.prompt", "session.command", "session.abort",
    "permission.reply", "question.reply", "question.reject",
    "terminal.open", "terminal.close", "provider.key.set",
    "push.subscribe", "push.unsubscribe", "share.create", "share.revoke",
    "team.create", "team.delete", "team.member.set", "team.member.remove",
    "team.upstream.set", "team.root.set",
})
CLI = "cli"  # the principal of operator commands
EXTENSION = "x-audit-action"  # where a route's action is declared (its OpenAPI operation)
_SCAN_LIMIT = 10_000  # entries looked at per page when filters skip most of them
_BATCH = 500
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def audited(action: str) -> dict[str, Any]:
    """The `openapi_extra` that makes a route audited as `action`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to audit.ACTIONS")
    return {EXTENSION: action}


def outcome_of(status: int) -> Outcome:
    return "ok" if status < 400 else "refused" if status < 500 else "failed"


# ----- what a route adds to its own entry --------------------------------------------------
_UNSET: Any = object()


@dataclass
class Note:
    principal: str | None = _UNSET  # overrides the caller (login and logout have none)
    target: str | None = None
    session: str | None = None
    team: str | None = None  # a team's name, when the action is about the team itself
    detail: dict[str, Any] = field(default_factory=dict)


_note: ContextVar[Note | None] = ContextVar("opencode_relay_audit_note", default=None)


def open_note() -> tuple[Note, Any]:
    """For the middleware: a fresh note for this request, and the token to reset it."""
    fresh = Note()
    return fresh, _note.set(fresh)


def close_note(token: Any) -> None:
    _note.reset(token)


def note(*, principal: str | None = _UNSET, target: str | None = None,
         session: str | None = None, team: str | None = None,
         **detail: str | int | bool | None) -> None:
    """Adds to the current request's audit entry: who acted (login, logout), what it acted on
    (defaults: the path's request, terminal or session id) and small facts in `detail`.
    Never pass a secret or user text (give its length). Outside an audited request: nothing."""
    current = _note.get()
    if current is None:
        return
    if principal is not _UNSET:
        current.principal = principal
    if target is not None:
        current.target = target
    if session is not None:
        current.session = session
    if team is not None:
        current.team = team
    current.detail.update(detail)


def noted_principal(note_: Note, fallback: str | None) -> str | None:
    return fallback if note_.principal is _UNSET else note_.principal


# ----- the stream ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditQuery:
    since_ms: int | None = None
    until_ms: int | None = None
    principal: str | None = None
    action: str | None = None  # exact, or a family ending in "." ("session.")
    session: str | None = None
    team: str | None = None  # a team's name
    limit: int = 100
    after: str | None = None  # a page's `next`: entries older than this one

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.principal is not None and entry.get("principal") != self.principal:
            return False
        if self.session is not None and entry.get("session") != self.session:
            return False
        if self.team is not None and entry.get("team") != self.team:
            return False
        if self.action is not None:
            action = str(entry.get("action", ""))
            if self.action.endswith("."):
                return action.startswith(self.action)
            return action == self.action
        return True


@dataclass(frozen=True)
class AuditPage:
    entries: list[dict[str, Any]]
    next: str | None  # pass as `after` for older entries; None: nothing older matches


class AuditLog:
    def __init__(self, redis: Redis, keys: Keys, max_entries: int,
                 anonymous_per_minute: int = 60) -> None:
        self.redis = redis
        self.keys = keys
        self.max_entries = max_entries
        self.anonymous_per_minute = anonymous_per_minute

    async def record(self, action: str, *, principal: str | None, outcome: Outcome = "ok",
                     target: str | None = None, session: str | None = None,
                     request_id: str | None = None, status: int | None = None,
                     detail: dict[str, Any] | None = None, team: str | None = None
                     ) -> str | None:
        """Appends one entry; returns its id (the stream id, also the paging cursor), or None
        for an entry without a principal past `anonymous_per_minute` (not written)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        now = time.time()
        if principal is None and not await self._anonymous_allowed(int(now // 60)):
            return None
        entry = {"time": _iso(now), "principal": principal, "team": team, "action": action,
                 "target": target, "session": session, "request_id": request_id,
                 "outcome": outcome, "status": status, "detail": detail or {}}
        raw = await self.redis.xadd(self.keys.audit, {"e": json.dumps(entry)},
                                    maxlen=self.max_entries, approximate=True)
        return text(raw)

    async def _anonymous_allowed(self, minute: int) -> bool:
        key = self.keys.audit_anonymous(minute)
        async with transaction(self.redis, key) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        if int(count) == self.anonymous_per_minute + 1:
            logger.warning("more than %d audit entries without a principal (refused logins) "
                           "this minute: the rest of the minute's are not kept",
                           self.anonymous_per_minute)
        return int(count) <= self.anonymous_per_minute

    async def page(self, query: AuditQuery) -> AuditPage:
        """Matching entries, newest first, at most `query.limit`; at most _SCAN_LIMIT entries
        are looked at, so a page may come short with a `next` to go on from."""
        high = "+" if query.until_ms is None else str(query.until_ms)
        if query.after is not None:
            high = f"({query.after}"
            if query.until_ms is not None and int(query.after.split("-")[0]) > query.until_ms:
                high = str(query.until_ms)
        low = "-" if query.since_ms is None else str(query.since_ms)
        found: list[dict[str, Any]] = []
        scanned = 0
        while True:
            batch = entries(await self.redis.xrevrange(self.keys.audit, high, low, count=_BATCH))
            for raw_id, fields in batch:
                scanned += 1
                entry_id = text(raw_id)
                entry = {"id": entry_id, **json.loads(fields[b"e"])}
                if query.matches(entry):
                    found.append(entry)
                    if len(found) == query.limit:
                        return AuditPage(found, entry_id)
            if len(batch) < _BATCH:
                return AuditPage(found, None)
            last = text(batch[-1][0])
            if scanned >= _SCAN_LIMIT:
                return AuditPage(found, last)
            high = f"({last}"



async def trim(redis: Redis, keys: Keys, before_ms: int) -> int:
    """Drops entries older than `before_ms` (epoch ms); returns how many went. Run by
    retention.Retention with RELAY_AUDIT_MAX_AGE_SECONDS, like the event logs' age limit."""
    return int(await redis.xtrim(keys.audit, minid=f"{before_ms}-0", approximate=False))


# ----- times --------------------------------------------------------------------------------
def _iso(seconds: float) -> str:
    return (datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def parse_when(value: str, now: float | None = None, name: str = "since") -> int:
    """Epoch milliseconds of `value`: a duration back from now ("90s", "15m", "1h", "7d",
    "2w"), an ISO 8601 time (UTC unless it says otherwise) or epoch milliseconds."""
    value = value.strip()
    now = time.time() if now is None else now
    if match := _DURATION.match(value):
        return int((now - int(match[1]) * _UNIT_SECONDS[match[2]]) * 1000)
    if value.isdigit() and len(value) <= 15:
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be a duration back from now (90s, 15m, 1h, 7d, 2w), "
                           f"an ISO 8601 time or epoch milliseconds; got {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def check_cursor(value: str) -> str:
    if not _STREAM_ID.match(value):
        raise InvalidInput("after must be a page's `next` (an entry id like 1764130000000-0)")
    return value
