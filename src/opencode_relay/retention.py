"""Retention: idle sessions leave Redis with all their keys; event logs lose old entries.

A session is active, and kept with its whole family (parent and sub-agent sessions), while it
is busy or retrying, has a permission/question waiting, or changed recently (its info's
`time.updated` or its last logged event). Removal re-checks that under WATCH, so a session that
wakes up between the scan and the removal is kept. opencode keeps its own copy: this only bounds
what the relay holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from . import audit
from .config import Settings
from .store.connect import transaction
from .store.keys import Keys
from .store.log import EventId
from .store.staging import Staging
from .store.state import JSON, StateStore

logger = logging.getLogger("opencode_relay.retention")

ACTIVE_STATUSES = frozenset({"busy", "retry"})
_BATCH = 500


@dataclass
class PruneReport:
    removed: list[str] = field(default_factory=list)
    kept_active: list[str] = field(default_factory=list)
    trimmed_events: int = 0
    trimmed_audit: int = 0

    def as_dict(self, dry_run: bool = False) -> dict[str, object]:
        return {"dry_run": dry_run, "removed" if not dry_run else "would_remove": self.removed,
                "kept_active": len(self.kept_active), "trimmed_events": self.trimmed_events,
                "trimmed_audit": self.trimmed_audit}


@dataclass
class _Seen:
    info: JSON
    status: str
    pending: int
    last_event_ms: int

    def last_change_ms(self) -> int:
        times = self.info.get("time") or {}
        return max(int(times.get("updated") or 0), int(times.get("created") or 0),
                   self.last_event_ms)


class Retention:
    def __init__(self, redis: Redis, keys: Keys, store: StateStore, idle_seconds: float,
                 log_max_age_seconds: float, on_removed: Callable[[int], None] | None = None,
                 *, audit_max_age_seconds: float = 0) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.idle_seconds = idle_seconds
        self.log_max_age_seconds = log_max_age_seconds
        self.audit_max_age_seconds = audit_max_age_seconds
        self.on_removed = on_removed or (lambda _n: None)

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings) -> Retention:
        keys = Keys(settings.key_prefix)
        return cls(redis, keys, StateStore(redis, keys), settings.session_idle_seconds,
                   settings.log_max_age_seconds,
                   audit_max_age_seconds=settings.audit_max_age_seconds)

    async def prune(self, dry_run: bool = False) -> PruneReport:
        report = PruneReport()
        now_ms = await self._now_ms()
        if self.idle_seconds > 0:
            await self._prune_sessions(now_ms - int(self.idle_seconds * 1000), dry_run, report)
        if self.log_max_age_seconds > 0 and not dry_run:
            report.trimmed_events = await self._trim_logs(
                now_ms - int(self.log_max_age_seconds * 1000))
        if self.audit_max_age_seconds > 0 and not dry_run:
            # Like the event logs, by age; the stream's own cap bounds it in between.
            report.trimmed_audit = await audit.trim(
                self.redis, self.keys, now_ms - int(self.audit_max_age_seconds * 1000))
        return report

    # ----- sessions ----------------------------------------------------------------------
    async def _prune_sessions(self, cutoff_ms: int, dry_run: bool, report: PruneReport) -> None:
        seen = await self._read_all(await self.store.list_session_ids())
        children: dict[str, list[str]] = {}
        for sid, s in seen.items():
            parent = s.info.get("parentID")
            if parent in seen:
                children.setdefault(parent, []).append(sid)
        roots = [sid for sid, s in seen.items() if s.info.get("parentID") not in seen]
        for root in roots:
            family = _family(root, children)
            if any(_is_active(seen[sid], cutoff_ms) for sid in family):
                report.kept_active.extend(family)
                continue
            report.removed.extend(family if dry_run
                                  else await self._remove_family(family, seen, cutoff_ms))
        if report.removed and not dry_run:
            self.on_removed(len(report.removed))
            logger.info("pruned %d idle sessions", len(report.removed))

    async def _remove_family(self, family: list[str], seen: dict[str, _Seen],
                             cutoff_ms: int) -> list[str]:
        """Removes each session still idle, sub-agents first, each in one transaction of its
        own slot; stops at the first that changed meanwhile (it and its ancestors stay).
        Returns those removed."""
        removed: list[str] = []
        for sid in reversed(family):  # depth first from the root: children come after parents
            if not await self._remove_one(sid, seen[sid], cutoff_ms):
                break
            removed.append(sid)
        return removed

    async def _remove_one(self, sid: str, seen: _Seen, cutoff_ms: int) -> bool:
        watched = [self.keys.session(sid), self.keys.status(sid), self.keys.requests(sid),
                   self.keys.session_messages(sid), self.keys.session_events(sid)]
        async with transaction(self.redis, self.keys.session(sid)) as pipe:  # its slot
            try:
                await pipe.watch(*watched)
                fresh = await self._read_all([sid])
                if sid not in fresh or _is_active(fresh[sid], cutoff_ms):
                    return False
                pipe.multi()
                async with Staging(self.redis, watched=(sid, pipe)) as stage:
                    await self.store.stage_remove_session(stage, sid, seen.info.get("parentID"),
                                                          keep_owner=True)
                    # Remembered so a reconnect's reconcile does not import it straight back.
                    updated = (seen.info.get("time") or {}).get("updated") or 0
                    stage.indexes.zadd(self.keys.pruned, {sid: int(updated)})
                    await stage.commit()
                return True
            except WatchError:
                return False  # it changed meanwhile: not idle after all

    async def _read_all(self, sids: list[str]) -> dict[str, _Seen]:
        found: dict[str, _Seen] = {}
        for start in range(0, len(sids), _BATCH):
            chunk = sids[start:start + _BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in chunk:
                    pipe.get(self.keys.session(sid))
                    pipe.get(self.keys.status(sid))
                    pipe.hlen(self.keys.requests(sid))
                    pipe.xrevrange(self.keys.session_events(sid), count=1)
                replies = await pipe.execute()
            for i, sid in enumerate(chunk):
                raw_info, raw_status, pending, last = replies[4 * i:4 * i + 4]
                if raw_info is None:
                    continue
                status = ((json.loads(raw_status) or {}).get("type", "idle") if raw_status
                          else "idle")
                last_ms = EventId.parse(last[0][0]).ms if last else 0
                found[sid] = _Seen(json.loads(raw_info), status, int(pending), last_ms)
        return found

    # ----- event logs --------------------------------------------------------------------
    async def _trim_logs(self, min_ms: int) -> int:
        minid = f"{min_ms}-0"
        trimmed = int(await self.redis.xtrim(self.keys.events, minid=minid, approximate=False))
        sids = await self.store.list_session_ids()
        for start in range(0, len(sids), _BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids[start:start + _BATCH]:
                    pipe.xtrim(self.keys.session_events(sid), minid=minid, approximate=False)
                trimmed += sum(int(n) for n in await pipe.execute())
        return trimmed

    # ----- periodic ----------------------------------------------------------------------
    async def run_forever(self, interval_seconds: float) -> None:
        """Prunes every interval, on one replica at a time (a lock that simply lapses)."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                if await self.redis.set(self.keys.retention_lock, "1", nx=True,
                                        px=max(1000, int(interval_seconds * 900))):
                    await self.prune()
            except (RedisError, OSError) as exc:
                logger.warning("retention pass failed: %s", exc)
            except Exception:  # a bug must not end pruning for the life of the process
                logger.exception("retention pass failed")

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000


def _family(root: str, children: dict[str, list[str]]) -> list[str]:
    found, todo = [], [root]
    while todo:
        sid = todo.pop()
        if sid not in found:
            found.append(sid)
            todo.extend(children.get(sid, ()))
    return found


def _is_active(seen: _Seen, cutoff_ms: int) -> bool:
    return (seen.status in ACTIVE_STATUSES or seen.pending > 0
            or seen.last_change_ms() >= cutoff_ms)
