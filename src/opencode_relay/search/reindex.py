"""Rebuilding the search index from what Redis holds (`opencode-relay search reindex`).

For sessions stored before search was turned on (or while it was off): each session's postings
are rewritten from its stored title and text parts, in one transaction per session, and its
hints written again. Sessions are read one at a time, so a big Redis is walked in bounded memory.
"""

from __future__ import annotations

import orjson

from ..store.staging import Staging
from ..store.state import StateStore
from .index import SearchIndex


async def reindex(store: StateStore, index: SearchIndex) -> tuple[int, int]:
    """Rebuilds every stored session's postings; returns (sessions, text parts) indexed."""
    sessions = parts = 0
    for sid in await store.list_session_ids():
        raw = await store.get_sessions_raw([sid])
        if not raw:
            continue  # removed meanwhile
        _cursor, records = await store.read_transcript(sid)
        async with Staging(store.redis) as stage:
            stage.on(sid).delete(store.keys.search_postings(sid))
            index.stage_title(stage, orjson.loads(raw[0]), cached=False)
            for record in records:
                for part_raw in record.parts:
                    part = orjson.loads(part_raw)
                    if isinstance(part, dict) and all(
                            isinstance(part.get(k), str) for k in ("id", "sessionID", "messageID")):
                        index.stage_part(stage, part, cached=False)
                        parts += 1 if part.get("type") == "text" else 0
            await stage.commit()
        sessions += 1
    return sessions, parts
