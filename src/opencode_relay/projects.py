"""The projects a caller may pick for a new session, and the folders its sessions live in.

Built from three sources, merged by resolved directory:
- the workspace roots (everyone sees them: they are the relay's configuration);
- opencode's projects (`GET /project`) whose folder lies under a root (everyone sees them; those
  outside the roots, such as opencode's catch-all `global` project at `/`, are left out);
- the directories of the caller's own sessions (admins: of every session), wherever they are;
- the default directory (RELAY_WORKSPACE_ROOTS' first, or OPENCODE_DEFAULT_DIRECTORY);
- the workspace roots of the caller's teams (where those teams' sessions must start).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .workspace import Workspace

JSON = dict[str, Any]


@dataclass
class _Project:
    directory: str
    name: str
    root: bool = False
    id: str | None = None
    vcs: str | None = None
    sessions: int = 0
    allowed: bool = False
    sources: set[str] = field(default_factory=set)
    teams: list[str] = field(default_factory=list)  # the caller's teams rooted here

    def public(self) -> JSON:
        return {"directory": self.directory, "name": self.name, "root": self.root,
                "id": self.id, "vcs": self.vcs, "sessions": self.sessions,
                "allowed": self.allowed, "sources": sorted(self.sources),
                "teams": sorted(self.teams)}


def _name(directory: str) -> str:
    return os.path.basename(directory.rstrip("/")) or directory


def list_projects(workspace: Workspace, opencode_projects: list[JSON],
                  session_directories: list[str],
                  team_roots: dict[str, str] | None = None) -> list[JSON]:
    """The merged list: roots first (in configured order), then the rest by directory.
    `allowed`: a new session may start there (an existing directory under a root).
    Touches the filesystem (realpath, isdir): run it off the event loop."""
    found: dict[str, _Project] = {}

    def entry(directory: str) -> _Project:
        resolved = os.path.realpath(directory)
        if resolved not in found:
            found[resolved] = _Project(
                resolved, _name(resolved),
                allowed=workspace.root_of(resolved) is not None and os.path.isdir(resolved))
        return found[resolved]

    for root in workspace.roots:
        project = entry(root)
        project.root = True
        project.sources.add("root")
    entry(workspace.default).sources.add("default")
    for team, team_root in (team_roots or {}).items():  # team name -> its root
        project = entry(team_root)
        project.sources.add("team")
        project.teams.append(team)
    for info in opencode_projects:
        worktree = info.get("worktree")
        if not isinstance(worktree, str) or not os.path.isabs(worktree):
            continue
        if not workspace.allows(worktree) or not os.path.isdir(worktree):
            continue  # outside the roots (another user's, or `/`), or gone
        project = entry(worktree)
        project.sources.add("opencode")
        project.id = str(info.get("id")) if info.get("id") else None
        project.vcs = info.get("vcs") if isinstance(info.get("vcs"), str) else None
        if isinstance(info.get("name"), str) and info["name"]:
            project.name = info["name"]
    for directory, count in Counter(session_directories).items():  # resolved once each
        if os.path.isabs(directory):
            project = entry(directory)
            project.sources.add("sessions")
            project.sessions += count
    order = {root: index for index, root in enumerate(workspace.roots)}
    projects = sorted(found.values(), key=lambda p: (p.directory not in order,
                                                     order.get(p.directory, 0), p.directory))
    return [p.public() for p in projects]
