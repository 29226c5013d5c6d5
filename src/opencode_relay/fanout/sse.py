"""The one Server-Sent Events encoder: every byte the relay streams to a client is made here."""

from __future__ import annotations

import orjson

from ..store.log import EventId


def frame(data: bytes | None = None, *, event_id: EventId | None = None,
          retry_ms: int | None = None, comment: str | None = None) -> bytes:
    """One SSE frame: an optional comment, `retry:`, `id:` and the `data:` lines, then a blank
    line. Newlines in `data` become further `data:` lines, as the format requires."""
    lines: list[bytes] = []
    if comment is not None:
        lines.append(b": " + comment.encode())
    if retry_ms is not None:
        lines.append(b"retry: " + str(retry_ms).encode())
    if event_id is not None:
        lines.append(b"id: " + str(event_id).encode())
    if data is not None:
        lines.append(b"data: " + data.replace(b"\n", b"\ndata: "))
    return b"\n".join(lines) + b"\n\n"


def event_frame(data: bytes, raw_id: bytes) -> bytes:
    """`frame(data, event_id=…)` for a logged event, its id as Redis wrote it: the hub makes
    one for every event it reads, so this one skips the general case."""
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    return b"id: " + raw_id + b"\ndata: " + data + b"\n\n"


def notice(kind: str, **properties: object) -> bytes:
    """The JSON of one of the relay's own events (`relay.*`, see events.py)."""
    return orjson.dumps({"type": kind, "properties": properties})
