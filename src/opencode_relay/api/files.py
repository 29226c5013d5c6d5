"""The session's files: its directory as a tree (one folder per request) and one file's content.

Both read opencode (`GET /file`, `GET /file/content`) for the session's directory, after
files.py has checked the path. Ownership is the session's: another principal's session is 404.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query

from ..files import MAX_PATH_CHARS, clean_path, locate
from ..relay import Relay
from ..security.access import Right
from .deps import get_relay
from .ids import SessionId
from .schemas import GATED, FileView, Folder, errors, ok
from .sessions import raw_json

router = APIRouter(prefix="/api", responses=GATED)

_PATH_HELP = ("Relative to the session's directory ('/'-separated, no '..', not absolute); "
              "symbolic links must not lead outside it")


@router.get("/sessions/{sid}/tree", responses={**ok(Folder), **errors(400, 404, 422)})
async def list_folder(sid: SessionId,
                      path: str = Query("", max_length=MAX_PATH_CHARS, description=_PATH_HELP),
                      relay: Relay = Depends(get_relay)) -> Any:
    """One folder of the session's directory (not recursive): its folders, then its files."""
    target = await relay.sessions.target(sid, Right.READ)
    relative = clean_path(path, allow_root=True)
    await locate(target.directory, relative, "directory")
    nodes = await target.client.list_folder(relative, target.directory)
    entries = [{"name": str(n.get("name", "")), "path": str(n.get("path", "")).rstrip("/"),
                "type": "directory" if n.get("type") == "directory" else "file",
                "ignored": bool(n.get("ignored", False))}
               for n in nodes if isinstance(n, dict)]
    entries.sort(key=lambda e: (e["type"] != "directory", str(e["name"]).lower(), str(e["name"])))
    # A folder may hold thousands of entries: encoded once, by orjson.
    return raw_json(orjson.dumps({"directory": target.directory, "path": relative,
                                  "entries": entries}))


def _decoded_size(content: str) -> int:
    try:
        return len(base64.b64decode(content, validate=False))
    except (binascii.Error, ValueError):
        return len(content) * 3 // 4


@router.get("/sessions/{sid}/file", responses={**ok(FileView), **errors(400, 404, 422)})
async def read_file(sid: SessionId,
                    path: str = Query(..., max_length=MAX_PATH_CHARS, description=_PATH_HELP),
                    relay: Relay = Depends(get_relay)) -> Any:
    """A file of the session's directory, for the viewer: text, an image (base64), or only its
    size and type when it is another binary or larger than RELAY_MAX_VIEW_BYTES."""
    target = await relay.sessions.target(sid, Right.READ)
    relative = clean_path(path, allow_root=False)
    limit = relay.settings.max_view_bytes
    found = await locate(target.directory, relative, "file")
    view: dict[str, Any] = {"path": relative, "limit": limit}
    if found is not None and found.size > limit:  # not even read
        return {**view, "type": "too_large", "size": found.size, "mime": None}
    content = await target.client.read_file(relative, target.directory)
    text = str(content.get("content") or "")
    mime = content.get("mimeType") if isinstance(content.get("mimeType"), str) else None
    if content.get("type") == "binary":
        size = found.size if found is not None else _decoded_size(text)
        if size > limit:
            return {**view, "type": "too_large", "size": size, "mime": mime}
        if mime and mime.startswith("image/") and content.get("encoding") == "base64":
            return {**view, "type": "image", "size": size, "mime": mime, "content": text,
                    "encoding": "base64"}
        return {**view, "type": "binary", "size": size, "mime": mime}
    size = found.size if found is not None else len(text.encode())
    if size > limit:
        return {**view, "type": "too_large", "size": size, "mime": mime}
    return {**view, "type": "text", "size": size, "mime": mime, "content": text}
