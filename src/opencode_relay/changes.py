"""A session's changes on disk.

In a git repository they are the working tree's changes against HEAD, as opencode reports them
(`GET /vcs/status`, `GET /vcs/diff`). Elsewhere opencode has nothing to compare with, so they are
the files the session's own tools wrote or edited (`write`, `edit`, `apply_patch`), read from
the stored transcript in Redis, each with the diffs those tool calls recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .errors import NotFound
from .store.state import JSON, StateStore
from .upstream.client import OpencodeClient

GIT = "git"      # the working tree of a git repository
TOOLS = "tools"  # the session's tool calls (not a git repository)

STATUSES = frozenset({"added", "modified", "deleted"})
# The tools whose completed calls changed files, and where they say which.
FILE_TOOLS = frozenset({"write", "edit", "multiedit", "apply_patch", "patch"})
_PATCH_TYPES = {"add": "added", "update": "modified", "move": "added", "delete": "deleted"}


@dataclass
class ChangedFile:
    path: str  # relative to the session's directory when inside it
    status: str  # added, modified or deleted
    additions: int = 0
    deletions: int = 0
    patches: list[str] = field(default_factory=list)

    def summary(self) -> JSON:
        return {"path": self.path, "status": self.status, "additions": self.additions,
                "deletions": self.deletions}

    def with_patch(self) -> JSON:
        return {**self.summary(), "patch": "\n".join(p.rstrip("\n") for p in self.patches)}


@dataclass(frozen=True)
class Changes:
    source: str  # GIT or TOOLS
    branch: str | None
    files: list[ChangedFile]

    def summary(self) -> JSON:
        return {"source": self.source, "branch": self.branch,
                "files": [f.summary() for f in self.files]}

    def file(self, path: str) -> ChangedFile:
        for changed in self.files:
            if changed.path == path:
                return changed
        raise NotFound("changed file", path)


async def git_branch(client: OpencodeClient, directory: str | None) -> str | None:
    """The checked-out branch, or None where the directory is not a git repository."""
    info = await client.vcs(directory)
    branch = info.get("branch") if isinstance(info, dict) else None
    return branch if isinstance(branch, str) and branch else None


async def list_changes(client: OpencodeClient, store: StateStore, family: list[str],
                       directory: str | None) -> Changes:
    """The changed files, without their diffs. `family`: the session and its sub-agents."""
    branch = await git_branch(client, directory)
    if branch is None:
        return Changes(TOOLS, None, await tool_changes(store, family, directory))
    files = [_from_opencode(item) for item in await client.vcs_status(directory)]
    return Changes(GIT, branch, [f for f in files if f is not None])


async def file_diff(client: OpencodeClient, store: StateStore, family: list[str],
                    directory: str | None, path: str) -> JSON:
    """One changed file with its unified diff (NotFound when the file has no changes)."""
    if await git_branch(client, directory) is None:
        return Changes(TOOLS, None, await tool_changes(store, family, directory)) \
            .file(path).with_patch()
    files = [_from_opencode(item) for item in await client.vcs_diff(directory)]
    return Changes(GIT, None, [f for f in files if f is not None]).file(path).with_patch()


def _from_opencode(item: object) -> ChangedFile | None:
    """A `VcsFileStatus`/`VcsFileDiff` entry; entries of another shape are skipped."""
    if not isinstance(item, dict) or not isinstance(item.get("file"), str):
        return None
    status = item.get("status") if item.get("status") in STATUSES else "modified"
    patch = item.get("patch")
    return ChangedFile(item["file"], str(status), _count(item.get("additions")),
                       _count(item.get("deletions")),
                       [patch] if isinstance(patch, str) and patch else [])


# ----- from the session's tool calls ---------------------------------------------------------
async def tool_changes(store: StateStore, family: list[str],
                       directory: str | None) -> list[ChangedFile]:
    """The files the completed tool calls of these sessions wrote, edited or deleted, in the
    order they were first touched, each with the diffs of those calls."""
    parts: list[JSON] = []
    for sid in family:
        _, records = await store.read_transcript(sid)
        # Most parts are text: those that are not tool calls are skipped unparsed.
        parts.extend(json.loads(raw) for record in records for raw in record.parts
                     if b'"tool"' in raw)
    return changes_from_parts(parts, directory)


def changes_from_parts(parts: Iterable[JSON], directory: str | None) -> list[ChangedFile]:
    """The files these parts' completed file tool calls changed, merged per file."""
    found: dict[str, ChangedFile] = {}
    for part in parts:
        for change in _changes_of(part, directory):
            _merge(found, change)
    return list(found.values())


def _merge(found: dict[str, ChangedFile], change: ChangedFile) -> None:
    before = found.get(change.path)
    if before is None:
        found[change.path] = change
        return
    status = before.status
    if change.status == "deleted":
        status = "deleted"
    elif before.status == "deleted":
        status = "modified" if change.status == "added" else change.status
    found[change.path] = replace(
        before, status=status, additions=before.additions + change.additions,
        deletions=before.deletions + change.deletions, patches=before.patches + change.patches)


def _changes_of(part: JSON, directory: str | None) -> Iterable[ChangedFile]:
    """The files one tool part changed, if it is a completed call of a file tool."""
    state = part.get("state")
    if part.get("type") != "tool" or part.get("tool") not in FILE_TOOLS \
            or not isinstance(state, dict) or state.get("status") != "completed":
        return []
    given = state.get("input")
    got = state.get("metadata")
    inp: JSON = given if isinstance(given, dict) else {}
    meta: JSON = got if isinstance(got, dict) else {}
    tool = part["tool"]
    if isinstance(meta.get("files"), list):  # apply_patch: one entry per file
        return [c for f in meta["files"] for c in _patched_files(f, directory)]
    target = inp.get("filePath") or meta.get("filepath")
    if not isinstance(target, str) or not target:
        return []
    path = _relative(target, directory)
    if tool == "write" and isinstance(inp.get("content"), str):
        return [_written(path, inp["content"], existed=bool(meta.get("exists")))]
    found = meta.get("filediff")
    filediff: JSON = found if isinstance(found, dict) else {}
    patch = filediff.get("patch") or meta.get("diff")
    if not isinstance(patch, str) or not patch:
        return []
    additions, deletions = _count(filediff.get("additions")), _count(filediff.get("deletions"))
    if not filediff:
        additions, deletions = _stats(patch)
    return [ChangedFile(path, "modified", additions, deletions, [patch])]


def _patched_files(entry: object, directory: str | None) -> list[ChangedFile]:
    """One file of an `apply_patch` call; a move is its new path added, its old one deleted."""
    if not isinstance(entry, dict):
        return []
    source, moved = entry.get("filePath"), entry.get("movePath")
    target = moved or source or entry.get("relativePath")
    if not isinstance(target, str) or not target:
        return []
    patch = entry.get("patch") if isinstance(entry.get("patch"), str) else ""
    found = [ChangedFile(_relative(target, directory),
                         _PATCH_TYPES.get(str(entry.get("type")), "modified"),
                         _count(entry.get("additions")), _count(entry.get("deletions")),
                         [patch] if patch else [])]
    if isinstance(moved, str) and moved and isinstance(source, str) and source:
        found.append(ChangedFile(_relative(source, directory), "deleted"))
    return found


def _written(path: str, content: str, existed: bool) -> ChangedFile:
    """A `write`: opencode records the new content only, so an overwritten file's diff shows
    the content it now has, under a hunk line that says the old one is not known."""
    lines = content.splitlines()
    if existed:
        hunk = f"@@ rewritten, {len(lines)} lines (the previous content was not recorded) @@"
    else:
        hunk = f"@@ -0,0 +1,{len(lines)} @@"
    patch = "\n".join([f"--- {'a/' + path if existed else '/dev/null'}", f"+++ b/{path}", hunk,
                       *(f"+{line}" for line in lines)])
    return ChangedFile(path, "modified" if existed else "added", len(lines), 0, [patch])


def _relative(target: str, directory: str | None) -> str:
    if directory and os.path.isabs(target):
        inside = os.path.relpath(target, directory)
        if not inside.startswith(".."):
            return inside.replace(os.sep, "/")
    return target


def _stats(patch: str) -> tuple[int, int]:
    additions = deletions = 0
    for line in patch.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line.startswith("+"):
            additions += 1
        elif line.startswith("-"):
            deletions += 1
    return additions, deletions


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0
