"""What the prompt box offers: slash commands (listed and run) and files to @-mention."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from ..attachments import check_file_parts
from ..audit import audited
from ..errors import InvalidInput
from ..ids import SESSION_ID
from ..relay import Relay
from ..security.access import Right
from .deps import get_relay
from .ids import SessionId
from .models import Directory, RunCommand
from .schemas import GATED, MESSAGE_LINKS, Commands, Files, Message, errors, ok

router = APIRouter(prefix="/api", responses=GATED)

# What the menu needs of a command; its template (often pages long) stays with opencode.
_COMMAND_FIELDS = ("name", "description", "source", "agent", "model", "subtask", "hints")


def _summary(command: dict[str, Any]) -> dict[str, Any]:
    return {k: command[k] for k in _COMMAND_FIELDS if command.get(k) is not None}


@router.get("/commands", responses={**ok(Commands), **errors(400, 404, 422)})
async def list_commands(session: str | None = Query(None, pattern=SESSION_ID,
                                                    description="A session: its directory"),
                        directory: Directory | None = Query(None),
                        upstream: str | None = Query(None, max_length=64),
                        relay: Relay = Depends(get_relay)) -> Any:
    """opencode's commands (built-in, the user's and the project's) for a session's directory
    (`session`), a `directory`, or the default one."""
    if session is not None:
        target = await relay.sessions.target(session, Right.READ)
        client, where = target.client, target.directory
    else:
        client = relay.sessions.upstream_named(upstream).client
        where = await relay.workspace.resolve(directory)
    return {"commands": [_summary(c) for c in await client.commands(where)]}


@router.post("/sessions/{sid}/command", openapi_extra=audited("session.command"),
             responses={**ok(Message, description="The answer, once the model has given it",
                                links=MESSAGE_LINKS),
                        **errors(400, 403, 404, 413, 415, 422, 429)})
async def run_command(sid: SessionId, body: RunCommand, relay: Relay = Depends(get_relay)) -> Any:
    target = await relay.sessions.target(sid, Right.DRIVE)
    check_file_parts(body.parts or [], target.directory, relay.settings.max_attachment_bytes)
    choices: dict[str, Any] = {k: v for k, v in (("agent", body.agent),
                                                 ("model", body.model_ref())) if v}
    await relay.sessions.check_choices(target.upstream, choices, target.directory)
    # opencode answers an unknown command with a bare error: named here instead.
    known = {c.get("name") for c in await target.client.commands(target.directory)}
    if body.command not in known:
        raise InvalidInput(f"unknown command {body.command!r}; see GET /api/commands")
    return await target.client.command(sid, body.to_opencode(), target.directory,
                                       timeout=relay.settings.prompt_timeout_seconds)


@router.get("/sessions/{sid}/files", responses={**ok(Files), **errors(400, 404, 422)})
async def find_files(sid: SessionId, query: str = Query("", max_length=200),
                     limit: int = Query(50, ge=1, le=200),
                     relay: Relay = Depends(get_relay)) -> Any:
    """Files of the session's directory whose path matches `query` (fuzzy, opencode's search)."""
    target = await relay.sessions.target(sid, Right.READ)
    return {"directory": target.directory,
            "files": await target.client.find_files(query, target.directory, limit)}
