"""Search across sessions: titles and message text of the sessions the caller may read."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query

from ..errors import InvalidInput, SearchDisabled
from ..relay import Relay
from ..search.index import TITLE, Hit
from ..search.tokens import parse_query, snippet
from .deps import get_relay
from .schemas import GATED, SearchResults, errors, ok

router = APIRouter(prefix="/api", responses=GATED)


@router.get("/search", responses={**ok(SearchResults), **errors(400, 404, 422)})
async def search(q: str = Query(..., max_length=200,
                                description="words, all required; the last one may be the "
                                            "start of a word unless `q` ends with a space"),
                 limit: int = Query(20, ge=1, le=100),
                 after: str | None = Query(None, max_length=100, pattern=r"^[A-Za-z0-9_]+$",
                                           description="`next` of the previous page"),
                 relay: Relay = Depends(get_relay)) -> Any:
    index = relay.store.search
    if index is None:
        raise SearchDisabled()
    query = parse_query(q)
    if query.empty:
        raise InvalidInput("q holds no word to search for (words are letters and digits, "
                           "2 to 40 of them)")
    hits, following = await index.search(query, limit, after, relay.access.visible)
    return {"results": await _results(relay, hits, query), "next": following}


async def _results(relay: Relay, hits: list[Hit], query: Any) -> list[dict[str, Any]]:
    keys = relay.keys
    async with relay.redis.pipeline(transaction=False) as pipe:
        for hit in hits:
            pipe.get(keys.session(hit.sid))
            pipe.get(keys.part(hit.sid, hit.field) if hit.field != TITLE else keys.session(hit.sid))
        found = await pipe.execute()
    results = []
    for hit, raw_session, raw_part in zip(hits, found[::2], found[1::2], strict=True):
        if raw_session is None:
            continue  # removed since the match
        session = orjson.loads(raw_session)
        title = str(session.get("title") or "")
        source = title if hit.field == TITLE else str(orjson.loads(raw_part or b"{}").get("text")
                                                         or "")
        text, ranges = snippet(source, query)
        updated = (session.get("time") or {}).get("updated") or 0
        results.append({"sessionID": hit.sid, "title": title,
                        "messageID": hit.mid or None,
                        "partID": hit.field if hit.field != TITLE else None,
                        "snippet": text, "ranges": [list(r) for r in ranges],
                        "time": hit.time or int(updated)})
    return results
