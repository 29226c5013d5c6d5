"""Projects: where a new session may start, and the folders of the caller's sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Depends

from ..projects import list_projects
from ..relay import Relay
from .deps import get_relay
from .schemas import GATED, Projects, ok

router = APIRouter(prefix="/api", responses=GATED)

# The caller's newest sessions whose folders are listed (a bound on the work per request).
SESSIONS_SCANNED = 2000


async def _session_directories(relay: Relay) -> list[str]:
    """The directories of the caller's own top-level sessions (every session's, for admins)."""
    if relay.access.sees_all():
        ids = await relay.store.list_session_ids(SESSIONS_SCANNED)
    else:
        ids = await relay.access.visible(await relay.store.list_session_ids(), SESSIONS_SCANNED)
    directories = []
    for raw in await relay.store.get_sessions_raw(ids):
        info = orjson.loads(raw)
        if isinstance(info, dict) and not info.get("parentID") \
                and isinstance(info.get("directory"), str):
            directories.append(info["directory"])
    return directories


async def _team_roots(relay: Relay) -> dict[str, str]:
    """Team name -> workspace root, of the teams the caller may start sessions in."""
    roles = await relay.access.roles()
    return {team.name: team.root for team in await relay.access.teams.all()
            if team.root is not None and roles.get(team.id, "viewer") != "viewer"}


@router.get("/projects", responses=ok(Projects))
async def projects(relay: Relay = Depends(get_relay)) -> Any:
    """The workspace roots, opencode's projects under them, the caller's sessions' folders and its
    teams' roots."""
    default = relay.workspace.default
    found, directories, team_roots = await asyncio.gather(
        asyncio.gather(*(u.client.projects(default) for u in relay.upstreams.values())),
        _session_directories(relay), _team_roots(relay))
    opencode_projects = [p for answer in found for p in answer if isinstance(p, dict)]
    listed = await asyncio.to_thread(list_projects, relay.workspace, opencode_projects,
                                     directories, team_roots)
    return {"roots": list(relay.workspace.roots), "default": default, "projects": listed}
