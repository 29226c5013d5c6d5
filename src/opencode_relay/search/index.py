"""The search index in Redis: per-session postings, plus global hints of where a term occurs.

Two layers, so that every key of a session keeps its session's hash tag (Redis Cluster):

- **Postings** (`search:{sid}:postings`, a HASH in the session's slot): one field per indexed
  text part (and `title`), holding its message id, time and its distinct terms. Written in the
  same transaction as the ingest batch that carries the part, deleted with the session. They are
  the truth: a search only returns what a session's postings match.
- **Hints** (`search:term:<term>`, ZSETs of session ids, outside any session's slot): sessions that
  *may* hold a term, so a query need not visit every session. They are only ever a superset:
  a term leaving a part leaves the hint (the postings check drops it), a removed session's hints
  are dropped best-effort at removal and for good by the first query that meets them. Hence they
  can be written beside (not inside) the session's transaction under Redis Cluster.

Indexed: user and assistant `text` parts (not synthetic ones) and titles. Not indexed: reasoning
(the model's scratch work, long and repetitive), tool input and output (file contents and command
output would drown the conversation's own words and are read through the Files/Changes panels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..store.keys import Keys
from ..store.replies import text
from ..store.scripts import Script
from ..store.staging import Staging
from .tokens import Query, terms

JSON = dict[str, Any]
Hints = dict[str, set[str]]  # term -> sessions, collected over a batch
TITLE = "title"  # the postings field of the session's title

# The best part of one session for a query: the newest one holding every exact term and a term
# starting with the prefix ('' for none). Terms are stored space-padded, so a plain find of
# ' term ' is a whole-word match and ' prefix' a prefix match.
# KEYS: the session's postings. ARGV: prefix, exact terms... Reply: false when the session has no
# postings at all (gone), else {field, value} of the best part or {} for none.
_MATCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local all = redis.call('HGETALL', KEYS[1])
local best_field, best_value, best_mid = nil, nil, nil
for i = 1, #all, 2 do
  local value = all[i + 1]
  local ok = true
  for j = 2, #ARGV do
    if not string.find(value, ' ' .. ARGV[j] .. ' ', 1, true) then ok = false break end
  end
  if ok and ARGV[1] ~= '' and not string.find(value, ' ' .. ARGV[1], 1, true) then ok = false end
  if ok then
    local mid = string.sub(value, 1, (string.find(value, '\\t', 1, true) or 1) - 1)
    if best_field == nil or (mid ~= '' and (best_mid == '' or mid > best_mid)) then
      best_field, best_value, best_mid = all[i], value, mid
    end
  end
end
if best_field == nil then return {} end
return {best_field, best_value}
"""


# KEYS: the vocabulary, then term hint keys. ARGV: the new vocabulary words, then for each term
# key the session ids to add to it (space-separated).
_ADD_HINTS = """
local function add(key, list)
  local members = {}
  for member in string.gmatch(list, '%S+') do
    members[#members + 1] = 0
    members[#members + 1] = member
    if #members >= 4000 then
      redis.call('ZADD', key, unpack(members))
      members = {}
    end
  end
  if #members > 0 then redis.call('ZADD', key, unpack(members)) end
end
add(KEYS[1], ARGV[1])
for i = 2, #KEYS do add(KEYS[i], ARGV[i]) end
return #KEYS - 1
"""


@dataclass(frozen=True)
class Hit:
    sid: str
    field: str  # the part id, or TITLE
    mid: str    # '' for the title
    time: int


def indexable(part: JSON) -> bool:
    return (part.get("type") == "text" and isinstance(part.get("text"), str)
            and not part.get("synthetic") and not part.get("ignored"))


def _posting(mid: str, time: int, words: Iterable[str]) -> str:
    return f"{mid}\t{time}\t " + " ".join(words) + " "


def _part_time(part: JSON) -> int:
    times = part.get("time")
    if not isinstance(times, dict):
        return 0
    value = times.get("end") or times.get("start") or 0
    return int(value) if isinstance(value, (int, float)) else 0


class SearchIndex:
    def __init__(self, redis: Redis, keys: Keys, hint_cache_size: int = 200_000) -> None:
        self.redis = redis
        self.keys = keys
        self._match = Script(redis, _MATCH)
        self._add_hints = Script(redis, _ADD_HINTS)
        # Hints and vocabulary entries this process wrote: a streamed answer's part is updated
        # a few times and a session repeats its words, so most writes would be repeats. A hint is
        # dropped only for a session that is gone, whose id never comes back (a pruned session
        # read back in is indexed by `stage_snapshot` with `cached=False`).
        # Plain sets, emptied when full (an LRU's bookkeeping costs more than the writes it saves).
        self._hint_cache_size = hint_cache_size
        self._hinted: set[tuple[str, str]] = set()
        self._known: set[str] = set()

    # ----- staged writes (on the ingest transaction) --------------------------------------
    def stage_part(self, stage: Staging, part: JSON, cached: bool = True,
                   hints: Hints | None = None) -> None:
        """Stages a text part's postings and hints (other parts: nothing).

        With `hints`, the hints are collected there instead, for `stage_hints` to stage once per
        batch (a batch's parts share most of their words: far fewer commands)."""
        if not indexable(part):
            return
        sid = part["sessionID"]
        words = terms(part["text"])
        key = self.keys.search_postings(sid)
        if not words:
            stage.on(sid).hdel(key, part["id"])
            return
        stage.on(sid).hset(key, part["id"],
                           _posting(part["messageID"], _part_time(part), words))
        if hints is None:
            self._stage_hints(stage.indexes, sid, words, cached)
        else:
            for word in words:
                hints.setdefault(word, set()).add(sid)

    def stage_title(self, stage: Staging, info: JSON, cached: bool = True) -> None:
        sid = info["id"]
        words = terms(str(info.get("title") or ""))
        key = self.keys.search_postings(sid)
        if not words:
            stage.on(sid).hdel(key, TITLE)
            return
        updated = (info.get("time") or {}).get("updated") or 0
        stage.on(sid).hset(key, TITLE, _posting("", int(updated), words))
        self._stage_hints(stage.indexes, sid, words, cached)

    def stage_remove_part(self, pipe: Pipeline, sid: str, pid: str) -> None:
        pipe.hdel(self.keys.search_postings(sid), pid)

    def _stage_hints(self, pipe: Pipeline, sid: str, words: list[str], cached: bool) -> None:
        self._bound_caches()
        for word in words:
            if not cached or (sid, word) not in self._hinted:
                pipe.zadd(self.keys.search_term(word), {sid: 0})
                self._hinted.add((sid, word))
            if not cached or word not in self._known:
                pipe.zadd(self.keys.search_vocabulary, {word: 0})
                self._known.add(word)

    def _bound_caches(self) -> None:
        if len(self._hinted) > self._hint_cache_size:
            self._hinted.clear()
        if len(self._known) > self._hint_cache_size:
            self._known.clear()

    async def stage_hints(self, pipe: Pipeline, hints: Hints) -> None:
        """Stages collected hints as one script call (a batch touches a thousand terms or more:
        one command each would cost more than the rest of the batch)."""
        self._bound_caches()
        hinted, known = self._hinted, self._known
        keys, args = [self.keys.search_vocabulary], [""]
        new_words = []
        for word, sids in hints.items():
            fresh = [sid for sid in sids if (sid, word) not in hinted]
            if fresh:
                keys.append(self.keys.search_term(word))
                args.append(" ".join(fresh))
                hinted.update((sid, word) for sid in fresh)
            if word not in known:
                new_words.append(word)
                known.add(word)
        args[0] = " ".join(new_words)
        if len(keys) > 1 or new_words:
            await self._add_hints(keys=keys, args=args, client=pipe)

    async def hints_of(self, sids: list[str]) -> dict[str, set[str]]:
        """The terms each session's postings hold (to drop its hints when it is removed)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hvals(self.keys.search_postings(sid))
            found = await pipe.execute()
        return {sid: {w for value in values for w in text(value).split("\t", 2)[-1].split()}
                for sid, values in zip(sids, found, strict=True)}

    def stage_drop_hints(self, pipe: Pipeline, sid: str, words: Iterable[str]) -> None:
        for word in words:
            pipe.zrem(self.keys.search_term(word), sid)

    # ----- queries -----------------------------------------------------------------------
    async def search(self, query: Query, limit: int, after: str | None,
                     visible: Callable[[list[str]], Awaitable[list[str]]],
                     chunk: int = 250, max_examined: int = 5000) -> tuple[list[Hit], str | None]:
        """Up to `limit` sessions matching `query`, in session id order after `after`, each
        with its best part; and the cursor of the next page (None at the end).

        Candidates come from the hints of the rarest exact term (or, for a lone prefix, of
        every term it expands to), `chunk` at a time; `visible` keeps those the caller may
        read; each session's postings then decide, inside Redis. At most `max_examined`
        candidates are visited per call; the cursor continues from there."""
        drivers = await self._drivers(query)
        if not drivers:
            return [], None
        hits: list[Hit] = []
        cursor = after or ""
        examined = 0
        while examined < max_examined:
            candidates = await self._next_candidates(drivers, cursor, chunk)
            if not candidates:
                return hits, None
            allowed = set(await visible(candidates))
            checked = [sid for sid in candidates if sid in allowed]
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in checked:
                    await self._match(keys=[self.keys.search_postings(sid)],
                                      args=[query.prefix or "", *query.exact], client=pipe)
                replies = dict(zip(checked, await pipe.execute(), strict=True))
            gone = [sid for sid, reply in replies.items() if reply is None]
            if gone:
                await self._repair(drivers, query, gone)
            for sid in candidates:
                reply = replies.get(sid)
                if reply:
                    mid, time, _words = text(reply[1]).split("\t", 2)
                    hits.append(Hit(sid, text(reply[0]), mid, int(time or 0)))
                    if len(hits) == limit:
                        return hits, sid
            cursor = candidates[-1]
            examined += len(candidates)
        return hits, cursor

    async def _drivers(self, query: Query) -> list[str]:
        if query.exact:
            async with self.redis.pipeline(transaction=False) as pipe:
                for word in query.exact:
                    pipe.zcard(self.keys.search_term(word))
                sizes = await pipe.execute()
            if min(sizes) == 0:
                return []
            rarest = min(zip(sizes, query.exact, strict=True))[1]
            return [self.keys.search_term(rarest)]
        assert query.prefix is not None
        low = b"[" + query.prefix.encode()
        expanded = await self.redis.zrangebylex(self.keys.search_vocabulary, low, low + b"\xff",
                                                start=0, num=64)
        return [self.keys.search_term(text(word)) for word in expanded]

    async def _next_candidates(self, drivers: list[str], cursor: str, chunk: int) -> list[str]:
        low = f"({cursor}" if cursor else "-"
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in drivers:
                pipe.zrangebylex(key, low, "+", start=0, num=chunk)
            found = await pipe.execute()
        merged = sorted({text(sid) for members in found for sid in members})
        return merged[:chunk]

    async def _repair(self, drivers: list[str], query: Query, gone: list[str]) -> None:
        """Drops the hints of sessions that no longer exist from the terms this query used."""
        keys = {*drivers, *(self.keys.search_term(w) for w in query.exact)}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, *gone)
            await pipe.execute()
