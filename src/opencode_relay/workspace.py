"""Workspace roots: the folders under which a new session's directory must lie.

The relay checks directories on its own filesystem: a path is resolved with realpath (every
symlink and `..` followed), then must be an existing directory inside one of the roots (also
resolved). That assumes the relay sees the same files as opencode: opencode on this machine
(loopback or embedded) or a shared mount at the same path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput

logger = logging.getLogger("opencode_relay.workspace")

DEFAULT_ROOT = "workspace"  # under RELAY_DATA_DIR when RELAY_WORKSPACE_ROOTS is unset


def parse_roots(value: str) -> list[str]:
    """`RELAY_WORKSPACE_ROOTS`: absolute paths separated by ':'."""
    roots = [entry.strip() for entry in value.split(":") if entry.strip()]
    if not roots:
        raise ValueError("RELAY_WORKSPACE_ROOTS names no folder")
    for root in roots:
        if not os.path.isabs(root):
            raise ValueError(f"workspace root {root!r} must be an absolute path")
    return roots


def contains(root: str, path: str) -> bool:
    """Whether `path` is `root` or lies below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _inside_a_repository(path: Path) -> bool:
    return any((folder / ".git").exists() for folder in (path, *path.parents))


def _own_repository(root: Path) -> None:
    """Makes a new root a git repository of its own. opencode takes the enclosing repository's
    top folder as a project's work tree, and lets the agent into all of it without asking:
    with the data folder inside a checkout (`make run`: ./var), that would be the relay's own
    source tree. An empty first commit gives the root a project id of its own."""
    git = shutil.which("git")
    if git is None:
        logger.warning("workspace root %s lies inside a git repository, and there is no git to "
                       "make it one of its own: opencode will treat that repository as the "
                       "project; set RELAY_WORKSPACE_ROOTS elsewhere", root)
        return
    identity = ["-c", "user.name=opencode-relay", "-c", "user.email=relay@localhost",
                "-c", "commit.gpgsign=false"]
    subprocess.run([git, "init", "-q"], cwd=root, check=True, capture_output=True)
    subprocess.run([git, *identity, "commit", "-q", "--allow-empty", "-m", "workspace root"],
                   cwd=root, check=True, capture_output=True)
    logger.info("workspace root %s made a git repository of its own (it lies inside another)",
                root)


@dataclass(frozen=True)
class Workspace:
    """The resolved roots (in configured order) and the directory a session gets by default."""

    roots: tuple[str, ...]
    default: str

    @classmethod
    def open(cls, roots: list[str] | None, data_dir: Path,
             default_directory: str | None) -> Workspace:
        """Resolves the roots, creating the default one (<data_dir>/workspace) when none is
        configured. Raises ValueError for a configured root that is no directory, or for a
        default directory outside the roots."""
        if roots is None:
            default_root = (data_dir / DEFAULT_ROOT).expanduser().absolute()
            if not default_root.is_dir():
                default_root.mkdir(parents=True)
                if _inside_a_repository(default_root.parent):
                    _own_repository(default_root)
            roots = [str(default_root)]
        resolved = tuple(dict.fromkeys(os.path.realpath(root) for root in roots))
        for root in resolved:
            if not os.path.isdir(root):
                raise ValueError(f"workspace root {root!r} is not a directory")
        default = os.path.realpath(default_directory) if default_directory else resolved[0]
        if not any(contains(root, default) for root in resolved):
            raise ValueError(f"the default directory {default_directory!r} lies outside the "
                             f"workspace roots ({':'.join(resolved)}); set "
                             "OPENCODE_DEFAULT_DIRECTORY to a folder under RELAY_WORKSPACE_ROOTS")
        return cls(resolved, default)

    def root_of(self, resolved: str) -> str | None:
        return next((root for root in self.roots if contains(root, resolved)), None)

    def check(self, directory: str) -> str:
        """The resolved directory, if it exists and lies under a root; InvalidInput (with the
        reason) otherwise. Touches the filesystem: call it through `resolve`."""
        if not os.path.isabs(directory):
            raise InvalidInput(f"directory {directory!r} is not an absolute path")
        resolved = os.path.realpath(directory)
        if self.root_of(resolved) is None:
            shown = directory if resolved == directory else f"{directory} (→ {resolved})"
            raise InvalidInput(f"directory {shown!r} is outside the workspace roots "
                               f"({':'.join(self.roots)})")
        if not os.path.exists(resolved):
            raise InvalidInput(f"directory {directory!r} does not exist")
        if not os.path.isdir(resolved):
            raise InvalidInput(f"{directory!r} is a file, not a directory")
        return resolved

    async def resolve(self, directory: str | None) -> str:
        """`check` for a directory a caller gave (the default one when None), off the loop."""
        return await asyncio.to_thread(self.check, directory or self.default)

    def allows(self, directory: str) -> bool:
        """Whether a directory (opencode's or a stored session's) lies under a root; no I/O
        beyond realpath, so cheap enough for listings."""
        return self.root_of(os.path.realpath(directory)) is not None
