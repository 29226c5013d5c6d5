"""Who owns which session, and the checks that keep other principals out.

A session created through the relay records its creator. Sub-agent sessions, created by opencode
itself, belong to their parent's owner. Sessions with no known owner (imported from opencode, or
created before auth was on) are visible to admins only. Owners never change, so they are cached.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Iterable, Sequence

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


class Access:
    def __init__(self, redis: Redis, keys: Keys, enabled: bool, cache_size: int = 50_000) -> None:
        self.redis = redis
        self.keys = keys
        self.enabled = enabled
        self.cache_size = cache_size
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()  # sid -> owner, expiry

    # ----- owner records -----------------------------------------------------------------
    def claim(self, pipe: Pipeline, sid: str) -> None:
        """Stages the current principal as the owner of a session it just created."""
        principal = current_principal()
        if principal is not None:
            pipe.set(self.keys.session_owner(sid), principal.id)
            self._remember(sid, principal.id, float("inf"))

    async def owner_of(self, sid: str, info: dict | None | object = _MISSING) -> str | None:
        """The owning principal's id (inherited from the parent), or None when unknown."""
        chain: list[str] = []
        current: str | None = sid
        owner = _NO_OWNER
        while current and current not in chain and len(chain) < 16:
            cached = self.peek(current)
            if cached is not _MISSING:
                owner = cached or _NO_OWNER
                break
            chain.append(current)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self.keys.session_owner(current))
                pipe.get(self.keys.session(current))
                raw_owner, raw_info = await pipe.execute()
            if raw_owner is not None:
                owner = raw_owner.decode()
                break
            session = json.loads(raw_info) if raw_info is not None else {}
            if _is_fresh(session):
                chain.pop()  # do not cache "no owner" for it; ancestors are still worth caching
            current = session.get("parentID")
        expiry = float("inf") if owner else time.monotonic() + _NEGATIVE_TTL
        for member in chain:
            self._remember(member, owner, expiry)
        return owner or None

    def peek(self, sid: str) -> str | object:
        """The cached owner ('' for none), or _MISSING."""
        found = self._owners.get(sid)
        if found is None:
            return _MISSING
        if found[1] < time.monotonic():
            del self._owners[sid]
            return _MISSING
        return found[0]

    def _remember(self, sid: str, owner: str, expiry: float) -> None:
        self._owners[sid] = (owner, expiry)
        self._owners.move_to_end(sid)
        while len(self._owners) > self.cache_size:
            self._owners.popitem(last=False)

    async def warm(self, sids: Iterable[str]) -> None:
        for sid in set(sids):
            if self.peek(sid) is _MISSING:
                await self.owner_of(sid)

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
        found: list[str] = []
        for sid in sids:
            if await self.may_see(principal, sid):
                found.append(sid)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def event_filter(self) -> "OwnerFilter | None":
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


def _is_fresh(session: dict) -> bool:
    created = (session.get("time") or {}).get("created")
    return isinstance(created, (int, float)) and time.time() * 1000 - created < _FRESH_MS
