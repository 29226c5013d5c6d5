"""A session as a download: Markdown or JSON, from the stored transcript (export.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response

from ..export import as_json, as_markdown, filename
from ..relay import Relay
from .deps import get_relay
from .ids import SessionId
from .schemas import GATED, SessionExport, errors, ok

router = APIRouter(prefix="/api", responses=GATED)

_MARKDOWN = {"text/markdown": {"schema": {"type": "string"},
                               "example": "# Title\n\n## Prompt\n\n…"}}


@router.get("/sessions/{sid}/export",
            responses={200: {**ok(SessionExport)[200],
                             "description": "A file (Content-Disposition: attachment): JSON, or "
                                            "Markdown with `format=markdown`",
                             "content": _MARKDOWN},
                       **errors(400, 404, 422)})
async def export_session(sid: SessionId,
                         format: Literal["markdown", "json"] = Query(
                             "markdown", description="markdown: to read; json: the stored "
                                                     "objects"),
                         reasoning: bool = Query(False, description="Markdown: include the "
                                                                    "model's reasoning"),
                         relay: Relay = Depends(get_relay)) -> Response:
    session = await relay.sessions.get(sid)
    records, _cursor = await relay.sessions.transcript(sid)
    if format == "json":
        body, media, extension = as_json(session, records), "application/json", "json"
    else:
        body = as_markdown(session, records, reasoning).encode()
        media, extension = "text/markdown; charset=utf-8", "md"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename(session, extension)}"',
        "Cache-Control": "no-store"})
