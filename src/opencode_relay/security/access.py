"""Who owns which session, and the checks that keep other principals out.

A session created through the relay records its creator. Sub-agent sessions, created by opencode
itself, belong to their parent's owner. Sessions with no known owner (imported from opencode, or
created before auth was on) are visible to admins only. Owners never change, so they are cached.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cachetools import TLRUCache
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..errors import NotFound
from ..store.keys import Keys
from .principal import Principal, current_principal

_MISSING = object()
_NO_OWNER = ""
# A session younger than this may still be waiting for its owner record (the creating route
# writes it after opencode answers), so "no owner" is not cached for it.
_FRESH_MS = 60_000
_NEGATIVE_TTL = 30.0
_MAX_DEPTH = 16  # sub-agent nesting followed to find an owner


def _owner_expiry(_sid: str, owner: str, now: float) -> float:
    return now + _NEGATIVE_TTL if owner == _NO_OWNER else math.inf


class Access:
    def __init__(self, redis: Redis, keys: Keys, enabled: bool, cache_size: int = 50_000) -> None:
        self.redis = redis
        self.keys = keys
        self.enabled = enabled
        # sid -> owner ('' for none). An owner never changes, so it stays until evicted;
        # "no owner" may change (a claim, a sub-agent's parent getting one): it expires.
        self._owners: TLRUCache[str, str] = TLRUCache(
            maxsize=cache_size, ttu=_owner_expiry, timer=time.monotonic)

    # ----- owner records -----------------------------------------------------------------
    def claim(self, pipe: Pipeline, sid: str) -> None:
        """Stages the current principal as the owner of a session it just created."""
        principal = current_principal()
        if principal is not None:
            pipe.set(self.keys.session_owner(sid), principal.id)
            self._owners[sid] = principal.id

    async def owner_of(self, sid: str) -> str | None:
        """The owning principal's id (inherited from the parent), or None when unknown."""
        return (await self.owners([sid]))[sid] or None

    async def owners(self, sids: Iterable[str]) -> dict[str, str]:
        """The owner of each session ('' for none), inherited from the nearest ancestor that
        has one: one round trip per generation of ancestors not cached yet."""
        wanted = list(dict.fromkeys(sids))
        known: dict[str, str] = {}     # owner records found
        parents: dict[str, str | None] = {}  # of sessions without one
        fresh: set[str] = set()        # too young for "no owner" to be final
        generation = [sid for sid in wanted if self.peek(sid) is _MISSING]
        for _ in range(_MAX_DEPTH):
            if not generation:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in generation:
                    pipe.get(self.keys.session_owner(sid))
                    pipe.get(self.keys.session(sid))
                replies = await pipe.execute()
            upward = []
            for sid, raw_owner, raw_info in zip(generation, replies[::2], replies[1::2],
                                              strict=True):
                if raw_owner is not None:
                    known[sid] = raw_owner.decode()
                    continue
                session = json.loads(raw_info) if raw_info is not None else {}
                if _is_fresh(session):
                    fresh.add(sid)
                parents[sid] = session.get("parentID")
                upward.append(parents[sid])
            generation = [p for p in dict.fromkeys(upward) if p and p not in known
                          and p not in parents and self.peek(p) is _MISSING]
        resolved = {sid: self._resolve(sid, known, parents) for sid in wanted}
        for sid in {*known, *parents}:
            if sid not in fresh:  # a young session's own record may still be on its way
                self._owners[sid] = self._resolve(sid, known, parents)
        return resolved

    def _resolve(self, sid: str, known: dict[str, str], parents: dict[str, str | None]) -> str:
        seen: list[str] = []
        current: str | None = sid
        while current and current not in seen and len(seen) < _MAX_DEPTH:
            seen.append(current)
            if current in known:
                return known[current]
            cached = self.peek(current)
            if cached is not _MISSING:
                return cached  # type: ignore[return-value]
            current = parents.get(current)
        return _NO_OWNER

    def peek(self, sid: str) -> str | object:
        """The cached owner ('' for none), or _MISSING."""
        return self._owners.get(sid, _MISSING)

    async def warm(self, sids: Iterable[str]) -> None:
        await self.owners(sids)

    # ----- checks ------------------------------------------------------------------------
    def sees_all(self, principal: Principal | None = None) -> bool:
        principal = principal or current_principal()
        return principal is not None and (principal.admin or not self.enabled)

    async def may_see(self, principal: Principal | None, sid: str) -> bool:
        if principal is None:
            return False
        if self.sees_all(principal):
            return True
        return await self.owner_of(sid) == principal.id

    async def may_see_current(self, sid: str) -> bool:
        return await self.may_see(current_principal(), sid)

    async def require(self, sid: str) -> None:
        """404 (never 403: existence is not revealed) unless the caller may see the session.

        A session not in Redis may be read through from opencode by admins, and by its owner
        when it was pruned (the owner record outlives the prune); others never had it.
        """
        principal = current_principal()
        if self.sees_all(principal):
            return
        if principal is None or not await self.may_see(principal, sid):
            raise NotFound("session", sid)

    async def visible(self, sids: list[str], limit: int | None = None) -> list[str]:
        """The ids among `sids`, in order, that the current principal may see."""
        principal = current_principal()
        if self.sees_all(principal):
            return sids[:limit] if limit is not None else sids
        if principal is None:
            return []
        owners = await self.owners(sids)
        return [sid for sid in sids if owners[sid] == principal.id][:limit]

    def event_filter(self) -> OwnerFilter | None:
        """For the global event stream: None (everything) or the current principal's filter."""
        principal = current_principal()
        if self.sees_all(principal):
            return None
        return OwnerFilter(self, principal)


class OwnerFilter:
    """Passes an event when it belongs to a session the principal owns.

    Called for every event from the hub's dispatch loop, so it must not wait: `prepare` fills
    the owner cache for a batch first; the call itself only reads the cache. Events that belong
    to no session (server-wide chatter, file watcher paths) never pass.
    """

    def __init__(self, access: Access, principal: Principal | None) -> None:
        self.access = access
        self.principal_id = principal.id if principal is not None else None

    async def prepare(self, sessions: Iterable[str]) -> None:
        await self.access.warm(sessions)

    def __call__(self, sessions: Sequence[str]) -> bool:
        if self.principal_id is None:
            return False
        return any(self.access.peek(sid) == self.principal_id for sid in sessions)


def _is_fresh(session: dict[str, Any]) -> bool:
    created = (session.get("time") or {}).get("created")
    return isinstance(created, (int, float)) and time.time() * 1000 - created < _FRESH_MS
