"""The session's changes on disk: the changed files, and one file's diff (changes.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from ..changes import file_diff, list_changes
from ..files import MAX_PATH_CHARS
from ..relay import Relay
from ..security.access import Right
from .deps import get_relay
from .ids import SessionId
from .schemas import GATED, ChangedFileDiff, Changes, errors, ok

router = APIRouter(prefix="/api", responses=GATED)


@router.get("/sessions/{sid}/changes", responses={**ok(Changes), **errors(400, 404)})
async def changes(sid: SessionId, relay: Relay = Depends(get_relay)) -> Any:
    """The files changed in the session's directory: the git working tree against HEAD, or,
    outside a git repository, the files the session's tools wrote or edited."""
    target = await relay.sessions.target(sid, Right.READ)
    found = await list_changes(target.client, relay.store, await relay.sessions.family(sid),
                               target.directory)
    return found.summary()


@router.get("/sessions/{sid}/changes/diff",
            responses={**ok(ChangedFileDiff), **errors(400, 404, 422)})
async def change_diff(sid: SessionId,
                      path: str = Query(min_length=1, max_length=MAX_PATH_CHARS,
                                        description="A `path` of `GET …/changes`"),
                      relay: Relay = Depends(get_relay)) -> Any:
    """One changed file with its unified diff; 404 when that file has no changes."""
    target = await relay.sessions.target(sid, Right.READ)
    return await file_diff(target.client, relay.store, await relay.sessions.family(sid),
                           target.directory, path)
