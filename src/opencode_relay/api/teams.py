"""Team routes: the caller's teams and roles, a team's members, and managing them.

Creating and deleting teams and binding them to an opencode server or a workspace root are
operator commands (`opencode-relay team …`): a binding decides where a team's agent may run, so
it stays with whoever configures the relay. A team's admins (and relay admins) add, change and
remove members here. Who may do what is decided in security/access.py.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ..audit import audited, note
from ..errors import NotFound
from ..relay import Relay
from ..teams import NAME_PATTERN, ROLES, Role, Team
from .deps import get_relay
from .schemas import GATED, Done, TeamDetail, TeamList, errors, ok

router = APIRouter(prefix="/api", responses=GATED)

TeamName = Annotated[str, Path(pattern=NAME_PATTERN, description="A team's name")]
PrincipalId = Annotated[str, Query(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$",
                                   description="A principal's id (a token's `tok_…`, or an "
                                               "OIDC login's)")]


class SetMember(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$",
                           description="A principal's id (a token's `tok_…`, or an OIDC "
                                       "login's)")
    role: Role = Field(description=f"One of {', '.join(ROLES)}")


def _info(team: Team, role: Role | None) -> dict[str, Any]:
    return {**team.public(), "role": role}


@router.get("/teams", responses=ok(TeamList))
async def list_teams(relay: Relay = Depends(get_relay)) -> Any:
    """The caller's teams and its role in each (relay admins: every team)."""
    roles = await relay.access.roles()
    every = relay.access.sees_all()
    return {"teams": [_info(team, roles.get(team.id) or ("admin" if every else None))
                      for team in await relay.access.teams.all()
                      if every or team.id in roles]}


async def _team(relay: Relay, name: str, role: Role) -> Team:
    """The team, if the caller holds at least `role` in it (404 when it is not in it)."""
    team = await relay.access.teams.named(name)  # the audit entry names it (its path)
    await relay.access.require_team(team, role)
    return team


async def _detail(relay: Relay, team: Team) -> dict[str, Any]:
    roles, members, holders = await asyncio.gather(
        relay.access.roles(), relay.access.teams.members(team),
        relay.access.teams.group_holders(team))
    mine = roles.get(team.id) or ("admin" if relay.access.sees_all() else None)
    return {"team": _info(team, mine),
            "members": [{"principal": p, "role": r} for p, r in sorted(members.items())],
            "groupHolders": [{"principal": p, "role": team.group_role} for p in holders]}


@router.get("/teams/{team}", responses={**ok(TeamDetail), **errors(400, 404)})
async def get_team(team: TeamName, relay: Relay = Depends(get_relay)) -> Any:
    """The team and its members (for anyone in it)."""
    return await _detail(relay, await _team(relay, team, "viewer"))


@router.put("/teams/{team}/members", openapi_extra=audited("team.member.set"),
            responses={**ok(TeamDetail), **errors(400, 403, 404, 422)})
async def set_member(team: TeamName, body: SetMember, relay: Relay = Depends(get_relay)) -> Any:
    """Adds a member, or changes its role (the team's admins)."""
    found = await _team(relay, team, "admin")
    note(target=body.principal, role=body.role)
    await relay.access.teams.set_member(found, body.principal, body.role)
    return await _detail(relay, found)


@router.delete("/teams/{team}/members", openapi_extra=audited("team.member.remove"),
               responses={**ok(Done), **errors(400, 403, 404, 422)})
async def remove_member(team: TeamName, principal: PrincipalId,
                        relay: Relay = Depends(get_relay)) -> Any:
    """Removes a member (the team's admins); its sessions stay its own."""
    found = await _team(relay, team, "admin")
    note(target=principal)
    if not await relay.access.teams.remove_member(found, principal):
        raise NotFound("member", principal)
    return {"ok": True}
