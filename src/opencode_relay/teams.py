"""Teams: named sets of principals, each with a role, that share the sessions made for the team.

A team has members (principal id -> role), and optionally an identity provider's group whose
holders are members with the team's `group_role` (OIDC logins carry their groups in
`Principal.groups`; who holds a group, for notifying them, is kept from sign-ins: groups.py).
A team may be bound to one of the configured opencode servers and to a workspace root (one of
RELAY_WORKSPACE_ROOTS or a folder under one): its sessions then run on that server, in folders
under that root.

Sessions record the team's id, not its name (`Keys.session_team`), so a team deleted and made
again under the same name never inherits the old team's sessions. What each role may do with
a team's sessions is decided in one place: security/access.py.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Literal

from redis.asyncio import Redis

from .errors import InvalidInput, NotFound, RoleRefused
from .groups import GroupHolders
from .security.principal import Principal
from .store.keys import Keys
from .store.replies import text
from .workspace import contains

Role = Literal["viewer", "member", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "member", "admin")  # weakest first
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_GROUP_MAX = 256


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(f"team name {name[:80]!r} must be 1-64 letters, digits or '_.-', "
                           "starting with a letter or digit")
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput(f"role {role[:40]!r} must be one of {', '.join(ROLES)}")
    return role


def check_group(group: str) -> str:
    if not group.strip() or len(group) > _GROUP_MAX:
        raise InvalidInput(f"a group name is 1-{_GROUP_MAX} characters")
    return group


def stronger(a: Role | None, b: Role | None) -> Role | None:
    """The role that may do more (None for neither)."""
    if a is None or b is None:
        return a or b
    return a if ROLES.index(a) >= ROLES.index(b) else b


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    created: float
    group: str | None = None  # holders of this identity-provider group are members…
    group_role: Role | None = None  # …with this role
    upstream: str | None = None  # the opencode server its sessions run on
    root: str | None = None  # the folder its sessions' directories lie under (resolved)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "group": self.group,
                "groupRole": self.group_role, "upstream": self.upstream, "root": self.root}

    def check_directory(self, directory: str) -> str:
        """`directory` (resolved) if the team has no root or it lies under it."""
        if self.root is not None and not contains(self.root, directory):
            raise InvalidInput(f"directory {directory!r} is outside the workspace root of "
                               f"team {self.name!r} ({self.root})")
        return directory


class Teams:
    """The teams, stored in Redis (key names in store/keys.py)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.groups = GroupHolders(redis, keys)

    # ----- reading -----------------------------------------------------------------------
    async def all(self) -> list[Team]:
        raw = await self.redis.hvals(self.keys.teams)
        return sorted((_team(r) for r in raw), key=lambda t: t.name)

    async def named(self, name: str) -> Team:
        """The team called `name`; NotFound when there is none."""
        found = next((t for t in await self.all() if t.name == name), None)
        if found is None:
            raise NotFound("team", name)
        return found

    async def by_id(self, team_id: str) -> Team | None:
        raw = await self.redis.hget(self.keys.teams, team_id)
        return _team(raw) if raw is not None else None

    async def members(self, team: Team) -> dict[str, Role]:
        raw = await self.redis.hgetall(self.keys.team_members(team.id))
        return {text(k): check_role(text(v)) for k, v in raw.items()}

    async def group_holders(self, team: Team) -> list[str]:
        """The holders of the team's group as their last sign-in said (groups.py); none when
        it has no group."""
        return await self.groups.holders(team.group) if team.group is not None else []

    async def names(self, team_ids: Iterable[str]) -> dict[str, str]:
        """Team id -> its name, for the ids that name a team (a deleted one's are left out).
        One round trip."""
        wanted = list(dict.fromkeys(team_ids))
        if not wanted:
            return {}
        raw = await self.redis.hmget(self.keys.teams, wanted)
        return {team_id: _team(record).name
                for team_id, record in zip(wanted, raw, strict=True) if record is not None}

    async def explicit_members(self, team_id: str, roles: Collection[Role]) -> list[str]:
        """The principals named members of the team with one of `roles`, as access checks
        read them (each one's own grant, `principal_teams`: added after the member list names
        it and removed before). A group's holders are `group_members`."""
        listed = await self.redis.hgetall(self.keys.team_members(team_id))
        candidates = [text(k) for k, v in listed.items() if text(v) in roles]
        if not candidates:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:  # several hash slots
            for principal_id in candidates:
                pipe.hget(self.keys.principal_teams(principal_id), team_id)
            grants = await pipe.execute()
        return [principal_id for principal_id, grant in zip(candidates, grants, strict=True)
                if grant is not None and text(grant) in roles]

    async def group_members(self, team_id: str, roles: Collection[Role]) -> list[str]:
        """The holders of the team's group (as of their last sign-in, groups.py) when its
        `group_role` is one of `roles`; none when it has no group, or another role."""
        team = await self.by_id(team_id)
        if team is None or team.group_role not in roles:
            return []
        return await self.group_holders(team)

    async def roles_of(self, principal: Principal) -> dict[str, Role]:
        """Team id -> the principal's role there: its own memberships, and the teams whose
        group it holds (the stronger role where both apply). One round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.principal_teams(principal.id))
            pipe.hvals(self.keys.teams)
            explicit, records = await pipe.execute()
        roles: dict[str, Role] = {text(k): check_role(text(v)) for k, v in explicit.items()}
        if principal.groups:
            held = set(principal.groups)
            for raw in records:
                team = _team(raw)
                if team.group in held and team.group_role is not None:
                    roles[team.id] = stronger(roles.get(team.id), team.group_role) \
                        or team.group_role
        return roles

    async def for_new_session(self, roles: dict[str, Role], requested: str | None,
                              named: bool, any_team: bool) -> Team | None:
        """The team a new session is made for. `named`: the request said which (`requested`,
        a name; None: no team). Otherwise the one team the caller may create sessions in, if
        there is exactly one. A team the caller is not in is NotFound, as an unknown one (relay
        admins, `any_team`, may use every team); a viewer may not create sessions."""
        if named and requested is None:
            return None
        if not named:
            creators = [t for t, role in roles.items() if role != "viewer"]
            return await self.by_id(creators[0]) if len(creators) == 1 else None
        assert requested is not None
        team = await self.named(requested)
        role = roles.get(team.id)
        if role is None and not any_team:
            raise NotFound("team", requested)
        if role == "viewer" and not any_team:
            raise RoleRefused(f"you are a viewer of team {team.name!r}: creating a team's "
                              "sessions needs the member role")
        return team

    # ----- changing ----------------------------------------------------------------------
    async def create(self, name: str, group: str | None = None,
                     group_role: Role | None = None) -> Team:
        check_name(name)
        if group is not None:
            check_group(group)
        if any(t.name == name for t in await self.all()):
            raise InvalidInput(f"a team named {name!r} exists already")
        team = Team(f"team_{secrets.token_hex(6)}", name, time.time(), group,
                    (group_role or "member") if group is not None else None)
        await self.redis.hset(self.keys.teams, team.id, json.dumps(asdict(team)))
        return team

    # A team's record, its member list and each member's list of teams live in different hash
    # slots (a Redis Cluster runs no transaction over them), so each change is written in an
    # order that is safe at every step: a grant (`principal_teams`, what access checks read)
    # is added after the member list names it and removed before (docs/architecture.md).

    async def delete(self, team: Team) -> None:
        """The team and its memberships go; its sessions stay their owners' (nobody else's).
        The members' grants go first, then the member list, then the record: a delete cut
        short leaves a team with fewer members, and deleting it again finishes."""
        members = await self.members(team)
        if members:
            async with self.redis.pipeline(transaction=False) as pipe:
                for principal_id in members:
                    pipe.hdel(self.keys.principal_teams(principal_id), team.id)
                await pipe.execute()
        await self.redis.delete(self.keys.team_members(team.id))
        await self.redis.hdel(self.keys.teams, team.id)

    async def set_member(self, team: Team, principal_id: str, role: Role) -> None:
        await self.redis.hset(self.keys.team_members(team.id), principal_id, role)
        await self.redis.hset(self.keys.principal_teams(principal_id), team.id, role)

    async def remove_member(self, team: Team, principal_id: str) -> bool:
        await self.redis.hdel(self.keys.principal_teams(principal_id), team.id)
        return bool(await self.redis.hdel(self.keys.team_members(team.id), principal_id))

    async def update(self, team: Team, **changes: str | None) -> Team:
        """The team with `group`, `group_role`, `upstream` or `root` changed (checked by the
        caller: which servers and roots exist is the relay's configuration)."""
        changed = replace(team, **changes)  # type: ignore[arg-type]
        await self.redis.hset(self.keys.teams, team.id, json.dumps(asdict(changed)))
        return changed


def _team(raw: bytes | str) -> Team:
    return Team(**json.loads(raw))
