"""Who may do what with which session: the one place the relay's access rules live.

A session created through the relay records its creator and, when made for a team, the team.
Sub-agent sessions, created by opencode itself, belong to their parent's owner and team.
Sessions with no known owner (imported from opencode, or created before auth was on) are
visible to admins only. Owners and teams of a session never change, so they are cached; who is
in a team does change, so a principal's roles are read afresh for every check (one round trip).

What a caller may do with a session (the table in docs/architecture.md):

- relay admins (`Principal.admin`, and everyone with auth off) and the session's owner: all;
- the team's `admin`: all but opening a terminal without the grant (`Right.MANAGE`);
- the team's `member`: reads and drives it (`Right.DRIVE`): prompts, aborts, undo, forks,
  commands, attachments, terminals (with the grant); not answering its permission and question
  requests, renaming, deleting or sharing it;
- the team's `viewer`: reads it (`Right.READ`): transcript, files, changes, export, streams;
- everyone else: the same 404 as for an id that never existed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from cachetools import TLRUCache, TTLCache
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..errors import NotFound, RoleRefused
from ..store.keys import Keys
from ..teams import ROLES, Role, Team, Teams
from .principal import Principal, current_principal

_MISSING = object()
_NO_OWNER = ""
# A session younger than this may still be waiting for its owner record (the creating route
# writes it after opencode answers), so "no owner" is not cached for it.
_FRESH_MS = 60_000
_NEGATIVE_TTL = 30.0
_MAX_DEPTH = 16  # sub-agent nesting followed to find an owner
_ROLES_SECONDS = 2.0  # how long an event filter trusts the roles it read


class Right(IntEnum):
    """What a caller may do with a session; each includes the ones before it."""

    READ = 1    # the session, its transcript, files, changes, exports and streams
    DRIVE = 2   # prompt, abort, undo/redo, fork, compact, commands, terminal, sub-sessions
    MANAGE = 3  # answer permission and question requests, rename, delete, share


# What answering a session's permission and question requests needs (the answer routes, and
# who is notified of a request: push/notifier.py).
ANSWERING = Right.MANAGE

# A team role's right on the team's sessions.
ROLE_RIGHTS: dict[Role, Right] = {"viewer": Right.READ, "member": Right.DRIVE,
                                  "admin": Right.MANAGE}
_NEEDS = {Right.DRIVE: ("member", "prompting, stopping, undoing, forking, compacting, running "
                                  "commands in or opening a terminal of a team's session"),
          Right.MANAGE: ("admin", "answering a permission or question request of, renaming, "
                                  "deleting or sharing a teammate's session")}


@dataclass(frozen=True)
class Holder:
    """Who a session belongs to: its owner's principal id and its team's id ('' for none)."""

    owner: str
    team: str = ""


_NOBODY = Holder(_NO_OWNER)


@dataclass(frozen=True)
class Standing:
    """A caller's standing towards one session."""

    right: Right | None  # None: the caller may not know the session exists
    team: str = ""  # the session's team id ('' for none)
    role: Role | None = None  # the caller's role in that team, if it holds one


def _holder_expiry(_sid: str, holder: Holder, now: float) -> float:
    return now + _NEGATIVE_TTL if holder.owner == _NO_OWNER else math.inf


class Access:
    def __init__(self, redis: Redis, keys: Keys, enabled: bool, cache_size: int = 50_000,
                 teams: Teams | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.enabled = enabled
        self.teams = teams or Teams(redis, keys)
        # sid -> its holder (owner '' for none). An owner never changes, so it stays until
        # evicted; "no owner" may change (a claim, a sub-agent's parent getting one): it expires.
        self._holders: TLRUCache[str, Holder] = TLRUCache(
            maxsize=cache_size, ttu=_holder_expiry, timer=time.monotonic)
        # (principal, groups) -> roles, for event filters only: all of one principal's open
        # streams share one read every _ROLES_SECONDS.
        self._recent_roles: TTLCache[tuple[str, tuple[str, ...]], dict[str, Role]] = TTLCache(
            maxsize=10_000, ttl=_ROLES_SECONDS, timer=lambda: time.monotonic())

    # ----- owner records -----------------------------------------------------------------
    def claim(self, pipe: Pipeline, sid: str, team: str | None = None) -> None:
        """Stages the current principal as the owner of a session it just created, and the
        team (its id) it was created for."""
        principal = current_principal()
        if principal is not None:
            pipe.set(self.keys.session_owner(sid), principal.id)
            if team:
                pipe.set(self.keys.session_team(sid), team)
            self._holders[sid] = Holder(principal.id, team or "")

    async def owner_of(self, sid: str) -> str | None:
        """The owning principal's id (inherited from the parent), or None when unknown."""
        return (await self.holders([sid]))[sid].owner or None

    async def team_of(self, sid: str) -> str | None:
        """The id of the session's team (inherited from the parent), or None."""
        return (await self.holders([sid]))[sid].team or None

    async def holders(self, sids: Iterable[str]) -> dict[str, Holder]:
        """The owner and team of each session, inherited from the nearest ancestor that has
        an owner record: one round trip per generation of ancestors not cached yet."""
        wanted = list(dict.fromkeys(sids))
        known: dict[str, Holder] = {}     # owner records found
        parents: dict[str, str | None] = {}  # of sessions without one
        fresh: set[str] = set()        # too young for "no owner" to be final
        generation = [sid for sid in wanted if self.peek(sid) is _MISSING]
        for _ in range(_MAX_DEPTH):
            if not generation:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in generation:
                    pipe.get(self.keys.session_owner(sid))
                    pipe.get(self.keys.session_team(sid))
                    pipe.get(self.keys.session(sid))
                replies = await pipe.execute()
            upward = []
            for sid, raw_owner, raw_team, raw_info in zip(
                    generation, replies[::3], replies[1::3], replies[2::3], strict=True):
                if raw_owner is not None:
                    known[sid] = Holder(raw_owner.decode(),
                                        raw_team.decode() if raw_team is not None else "")
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
                self._holders[sid] = self._resolve(sid, known, parents)
        return resolved

    def _resolve(self, sid: str, known: dict[str, Holder],
                 parents: dict[str, str | None]) -> Holder:
        seen: list[str] = []
        current: str | None = sid
        while current and current not in seen and len(seen) < _MAX_DEPTH:
            seen.append(current)
            if current in known:
                return known[current]
            cached = self.peek(current)
            if isinstance(cached, Holder):
                return cached
            current = parents.get(current)
        return _NOBODY

    def peek(self, sid: str) -> Holder | object:
        """The cached holder (owner '' for none), or _MISSING."""
        return self._holders.get(sid, _MISSING)

    async def warm(self, sids: Iterable[str]) -> None:
        await self.holders(sids)

    # ----- checks ------------------------------------------------------------------------
    def sees_all(self, principal: Principal | None = None) -> bool:
        principal = principal or current_principal()
        return principal is not None and (principal.admin or not self.enabled)

    async def roles(self, principal: Principal | None = None) -> dict[str, Role]:
        """Team id -> the principal's role there (the current principal's by default)."""
        principal = principal or current_principal()
        return await self.teams.roles_of(principal) if principal is not None else {}

    async def recent_roles(self, principal: Principal) -> dict[str, Role]:
        """`roles`, read at most every _ROLES_SECONDS per principal (for event filters)."""
        key = (principal.id, principal.groups)
        roles = self._recent_roles.get(key)
        if roles is None:
            roles = self._recent_roles[key] = await self.roles(principal)
        return roles

    async def standing(self, principal: Principal | None, sid: str) -> Standing:
        """What `principal` may do with the session (see the module's table)."""
        if principal is None:
            return Standing(None)
        holder = (await self.holders([sid]))[sid]
        role = (await self.roles(principal)).get(holder.team) if holder.team else None
        if self.sees_all(principal) or holder.owner and holder.owner == principal.id:
            return Standing(Right.MANAGE, holder.team, role)
        return Standing(ROLE_RIGHTS[role] if role else None, holder.team, role)

    async def may_see(self, principal: Principal | None, sid: str) -> bool:
        return (await self.standing(principal, sid)).right is not None

    async def may_see_current(self, sid: str) -> bool:
        return await self.may_see(current_principal(), sid)

    async def require(self, sid: str, right: Right = Right.READ) -> None:
        """404 (existence is not revealed) unless the caller may see the session; 403 when it
        may see it but its team role does not allow `right`.

        A session not in Redis may be read through from opencode by admins, and by its owner
        and team when it was pruned (both records outlive the prune); others never had it.
        """
        principal = current_principal()
        if self.sees_all(principal):
            return
        standing = await self.standing(principal, sid)
        if standing.right is None:
            raise NotFound("session", sid)
        if standing.right < right:
            team = await self.teams.by_id(standing.team)
            role, what = _NEEDS[right]
            raise RoleRefused(
                f"you are a {standing.role} of team {team.name if team else standing.team!r}: "
                f"{what} needs the {role} role (or being its creator)")

    async def visible(self, sids: list[str], limit: int | None = None) -> list[str]:
        """The ids among `sids`, in order, that the current principal may see."""
        principal = current_principal()
        if self.sees_all(principal):
            return sids[:limit] if limit is not None else sids
        if principal is None:
            return []
        holders = await self.holders(sids)
        # Roles only matter for team sessions of others (a round trip saved otherwise).
        others = any(h.team and h.owner != principal.id for h in holders.values())
        roles = await self.roles(principal) if others else {}
        return [sid for sid in sids if _sees(holders[sid], principal.id, roles)][:limit]

    async def require_team(self, team: Team, role: Role) -> None:
        """For reading (any role) or managing (`admin`) a team itself: NotFound for someone
        not in it, RoleRefused for a weaker role. Relay admins may do everything."""
        principal = current_principal()
        if self.sees_all(principal):
            return
        held = (await self.roles(principal)).get(team.id)
        if held is None:
            raise NotFound("team", team.name)
        if ROLES.index(held) < ROLES.index(role):
            raise RoleRefused(f"you are a {held} of team {team.name!r}: managing the team "
                              f"needs the {role} role")

    async def named_holders(self, sid: str, right: Right) -> list[str]:
        """The principals who hold `right` on the session by name, each once: its owner, then
        its team's explicit members whose role grants it (`team_members`), then the holders
        of the team's group as of their last sign-in (groups.py) when the group's role grants
        it. Not relay admins: they hold every right on every session, and are not a list."""
        holder = (await self.holders([sid]))[sid]
        named = [holder.owner] if holder.owner else []
        if holder.team:
            roles = [role for role in ROLES if ROLE_RIGHTS[role] >= right]
            named += await self.teams.explicit_members(holder.team, roles)
            named += await self.teams.group_members(holder.team, roles)
        return list(dict.fromkeys(named))

    def event_filter(self) -> SessionFilter | None:
        """For the global event stream: None (everything) or the current principal's filter."""
        principal = current_principal()
        if self.sees_all(principal):
            return None
        return SessionFilter(self, principal)


def _sees(holder: Holder, principal_id: str, roles: dict[str, Role]) -> bool:
    return bool(holder.owner) and holder.owner == principal_id \
        or bool(holder.team) and holder.team in roles


class SessionFilter:
    """Passes an event when it belongs to a session the principal owns, or one of a team it
    is in (any role).

    Called for every event from the hub's dispatch loop, so it must not wait: `prepare` fills
    the holder cache for a batch first, and takes the principal's roles, read afresh when older
    than a couple of seconds (so leaving a team takes effect on open streams too); the call
    itself only reads what is cached. Events that belong to no session (server-wide chatter,
    file watcher paths) never pass.
    """

    def __init__(self, access: Access, principal: Principal | None) -> None:
        self.access = access
        self.principal = principal
        self.roles: dict[str, Role] = {}

    async def prepare(self, sessions: Iterable[str]) -> None:
        if self.principal is not None:
            self.roles = await self.access.recent_roles(self.principal)
        await self.access.warm(sessions)

    def __call__(self, sessions: Sequence[str]) -> bool:
        if self.principal is None:
            return False
        principal_id = self.principal.id
        return any(isinstance(holder := self.access.peek(sid), Holder)
                   and _sees(holder, principal_id, self.roles) for sid in sessions)


def _is_fresh(session: dict[str, Any]) -> bool:
    created = (session.get("time") or {}).get("created")
    return isinstance(created, (int, float)) and time.time() * 1000 - created < _FRESH_MS
