"""Session state in Redis: sessions, messages, parts, status, diff, todos, pending requests.

Reads are batched (a whole transcript in one round trip). Writes are *staged* on a pipeline that
the caller executes, so the ingestor can commit each batch of events as one transaction.
Objects are stored as opencode's JSON, unchanged, and read back as raw bytes where possible so
the API can pass them through without re-encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..search.index import SearchIndex
from .keys import Keys
from .replies import data, text, zset_members
from .scripts import Script
from .staging import Staging

JSON = dict[str, Any]

# How long a message id sent for a new message stays claimed for its session: its message is
# ingested (and found in the message index) within seconds, or the prompt failed.
_MESSAGE_CLAIM_SECONDS = 3600


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; orjson because every streamed delta rewrites its part."""
    return orjson.dumps(value)


# The transcript and the log position it reflects, read in one atomic step (a session that
# streams changes faster than a multi-round-trip read of a big transcript could be retried).
# KEYS: the session's message index, its event log. ARGV: message key prefix, part key prefix.
# Reply: cursor, then per message: info, part count, parts.
_TRANSCRIPT = """
local out = {}
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
out[1] = newest[1] and newest[1][1] or '0-0'
for _, mid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local info = redis.call('GET', ARGV[1] .. mid)
  if info then
    local parts = {}
    for _, pid in ipairs(redis.call('ZRANGE', ARGV[1] .. mid .. ':parts', 0, -1)) do
      local part = redis.call('GET', ARGV[2] .. pid)
      if part then parts[#parts + 1] = part end
    end
    out[#out + 1] = info
    out[#out + 1] = #parts
    for _, part in ipairs(parts) do out[#out + 1] = part end
  end
end
return out
"""


# Removals read the indexes inside Redis, at EXEC time, so they can be staged in a transaction
# after writes to the same session (and see them). A message's part index is its key + ':parts'.
_REMOVE_MESSAGE_FUNCTION = """
local function remove_message(message, parts, part_prefix, postings)
  for _, pid in ipairs(redis.call('ZRANGE', parts, 0, -1)) do
    redis.call('DEL', part_prefix .. pid)
    if postings then redis.call('HDEL', postings, pid) end
  end
  redis.call('DEL', message, parts)
end
"""

# Every key is the session's (one slot); the global message index is cleaned after the commit
# (store/staging.py), from the message ids the session removal returns.
# KEYS: the session's message index, the message, its part index, the session's search
# postings. ARGV: message id, part key prefix.
_REMOVE_MESSAGE = _REMOVE_MESSAGE_FUNCTION + """
remove_message(KEYS[2], KEYS[3], ARGV[2], KEYS[4])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the session's message index, then the session's other keys to delete.
# ARGV: message key prefix, part key prefix. Reply: the ids of the messages it removed.
_REMOVE_SESSION = _REMOVE_MESSAGE_FUNCTION + """
local mids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, mid in ipairs(mids) do
  local message = ARGV[1] .. mid
  remove_message(message, message .. ':parts', ARGV[2], false)
end
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
return mids
"""


# Token and cost totals of a session, kept up to date as assistant messages change, so reading
# them costs the same for a long session as for a short one. The hash holds each assistant
# message's usage (`m:<id>`, JSON), the totals (one field per counter), `messages` (how many)
# and `last` (the newest assistant message's id that has tokens). A message's new usage
# replaces its old one in the totals.
# KEYS: the usage hash. ARGV: message id, its usage as JSON ('' removes it).
_USAGE_COUNTERS = ("input", "output", "reasoning", "cacheRead", "cacheWrite", "cost")
_PUT_USAGE = """
local counters = {'input', 'output', 'reasoning', 'cacheRead', 'cacheWrite', 'cost'}
local field = 'm:' .. ARGV[1]
local function add(entry, sign)
  for _, name in ipairs(counters) do
    local value = tonumber(entry[name]) or 0
    if value ~= 0 then redis.call('HINCRBYFLOAT', KEYS[1], name, sign * value) end
  end
end
local old = redis.call('HGET', KEYS[1], field)
if old then
  add(cjson.decode(old), -1)
  redis.call('HINCRBY', KEYS[1], 'messages', -1)
end
if ARGV[2] ~= '' then
  local entry = cjson.decode(ARGV[2])
  add(entry, 1)
  redis.call('HINCRBY', KEYS[1], 'messages', 1)
  redis.call('HSET', KEYS[1], field, ARGV[2])
  -- An answer still being written (no tokens yet) does not yet replace the newest one.
  local last = redis.call('HGET', KEYS[1], 'last')
  local counted = (tonumber(entry.input) or 0) + (tonumber(entry.output) or 0) > 0
  if not last or (counted and ARGV[1] >= last) then
    redis.call('HSET', KEYS[1], 'last', ARGV[1])
  end
  return 1
end
if not old then return 0 end
redis.call('HDEL', KEYS[1], field)
if redis.call('HGET', KEYS[1], 'last') == ARGV[1] then
  -- The newest answer left that has tokens (removals are rare: a scan is fine).
  local newest = false
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'm:' then
      local mid = string.sub(all[i], 3)
      local entry = cjson.decode(all[i + 1])
      local counted = (tonumber(entry.input) or 0) + (tonumber(entry.output) or 0) > 0
      if counted and (not newest or mid > newest) then newest = mid end
    end
  end
  if newest then redis.call('HSET', KEYS[1], 'last', newest)
  else redis.call('HDEL', KEYS[1], 'last') end
end
return 1
"""

# KEYS: the usage hash. Reply: the counters, `messages`, then the newest message's usage JSON.
_READ_USAGE = """
local out = redis.call('HMGET', KEYS[1], 'input', 'output', 'reasoning', 'cacheRead',
                       'cacheWrite', 'cost', 'messages')
local last = redis.call('HGET', KEYS[1], 'last')
out[#out + 1] = last and redis.call('HGET', KEYS[1], 'm:' .. last) or false
return out
"""


def message_usage(info: JSON) -> JSON | None:
    """What an assistant message used (opencode's `tokens` and `cost`), flat; None otherwise."""
    if info.get("role") != "assistant" or not isinstance(info.get("tokens"), dict):
        return None
    tokens = info["tokens"]
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}

    def number(value: Any) -> float:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return {"messageID": info["id"], "providerID": info.get("providerID"),
            "modelID": info.get("modelID"),
            "input": number(tokens.get("input")), "output": number(tokens.get("output")),
            "reasoning": number(tokens.get("reasoning")),
            "cacheRead": number(cache.get("read")), "cacheWrite": number(cache.get("write")),
            "cost": number(info.get("cost"))}


@dataclass
class MessageRecord:
    """One message as raw JSON: its info and its parts in order."""

    info: bytes
    parts: list[bytes]


class StateStore:
    def __init__(self, redis: Redis, keys: Keys, search: SearchIndex | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.search = search  # indexes titles and text parts as they are staged (RELAY_SEARCH)
        self._transcript = Script(redis, _TRANSCRIPT)
        self._remove_message = Script(redis, _REMOVE_MESSAGE)
        self._remove_session = Script(redis, _REMOVE_SESSION)
        self._put_usage = Script(redis, _PUT_USAGE)
        self._read_usage = Script(redis, _READ_USAGE)

    # ----- reads -------------------------------------------------------------------------
    async def list_session_ids(self, limit: int | None = None) -> list[str]:
        stop = -1 if limit is None else limit - 1
        return zset_members(await self.redis.zrevrange(self.keys.session_list, 0, stop))

    async def get_sessions_raw(self, sids: list[str]) -> list[bytes]:
        return [raw for _sid, raw in await self.sessions_raw(sids)]

    async def sessions_raw(self, sids: list[str]) -> list[tuple[str, bytes]]:
        """Each stored session among `sids`, in order, with its id (its JSON undecoded)."""
        found = await self._get_each([self.keys.session(sid) for sid in sids])
        return [(sid, raw) for sid, raw in zip(sids, found, strict=True) if raw is not None]

    async def _get_each(self, keys: list[str]) -> list[bytes | None]:
        """GET of each key in one round trip (a pipeline, not MGET: the keys' slots differ)."""
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            return await pipe.execute()

    async def sessions_titled(self, sids: list[str], needle: str,
                              limit: int) -> list[tuple[str, bytes]]:
        """The sessions among `sids`, in order, whose title contains `needle` ignoring case
        (at most `limit`; read 500 at a time), each with its id.

        Most sessions are ruled out on their raw JSON, undecoded: stored JSON is orjson's,
        which leaves non-ASCII text as it is, so in an all-ASCII session lowercasing is case
        folding, and a title holding the needle means the JSON holds it JSON-escaped."""
        folded = needle.casefold()
        escaped = dumps(folded)[1:-1] if folded.isascii() else None
        found: list[tuple[str, bytes]] = []
        for start in range(0, len(sids), 500):
            for sid, raw in await self.sessions_raw(sids[start:start + 500]):
                if raw.isascii() and (escaped is None or escaped not in raw.lower()):
                    continue
                if folded in str(orjson.loads(raw).get("title", "")).casefold():
                    found.append((sid, raw))
                    if len(found) == limit:
                        return found
        return found

    async def get_session(self, sid: str) -> JSON | None:
        raw = await self.redis.get(self.keys.session(sid))
        return json.loads(raw) if raw is not None else None

    async def session_of_message(self, mid: str) -> str | None:
        sid = await self.redis.hget(self.keys.message_index, mid)
        return text(sid) if sid is not None else None

    async def claim_message_id(self, mid: str, sid: str) -> str:
        """The session that owns a message id sent for a new message: the one whose stored
        message has it, else the first session it was claimed for (atomically, `SET NX`), which
        may be `sid`. The claim lasts until that message has long been ingested."""
        owner = await self.session_of_message(mid)
        if owner is not None:
            return owner
        claim = self.keys.message_claim(mid)
        if await self.redis.set(claim, sid, nx=True, ex=_MESSAGE_CLAIM_SECONDS):
            return sid
        claimed = await self.redis.get(claim)
        return text(claimed) if claimed is not None else sid

    async def message_ids(self, sid: str) -> list[str]:
        return zset_members(await self.redis.zrange(self.keys.session_messages(sid), 0, -1))

    async def part_ids(self, sid: str, mid: str) -> list[str]:
        return zset_members(await self.redis.zrange(self.keys.message_parts(sid, mid), 0, -1))

    async def part_ids_by_message(self, sid: str) -> dict[str, list[str]]:
        """Every message id of a session with its part ids, in two round trips."""
        mids = await self.message_ids(sid)
        async with self.redis.pipeline(transaction=False) as batch:
            for mid in mids:
                batch.zrange(self.keys.message_parts(sid, mid), 0, -1)
            part_lists = await batch.execute()
        return {mid: zset_members(pids) for mid, pids in zip(mids, part_lists, strict=True)}

    async def read_transcript(self, sid: str) -> tuple[bytes, list[MessageRecord]]:
        """The log position (its newest entry id) and the messages as of that position."""
        keys = [self.keys.session_messages(sid), self.keys.session_events(sid)]
        prefixes = [self.keys.message(sid, ""), self.keys.part(sid, "")]
        reply = await self._transcript(keys=keys, args=prefixes)
        cursor, records, at = reply[0], [], 1
        while at < len(reply):
            count = int(reply[at + 1])
            records.append(MessageRecord(info=reply[at], parts=reply[at + 2:at + 2 + count]))
            at += 2 + count
        return cursor, records

    async def read_parts(self, sid: str, mid: str) -> list[bytes]:
        pids = await self.part_ids(sid, mid)
        if not pids:
            return []
        found = await self.redis.mget([self.keys.part(sid, pid) for pid in pids])
        return [data(p) for p in found if p is not None]

    async def get_part(self, sid: str, pid: str) -> JSON | None:
        raw = await self.redis.get(self.keys.part(sid, pid))
        return json.loads(raw) if raw is not None else None

    async def read_json(self, key: str) -> Any:
        raw = await self.redis.get(key)
        return json.loads(raw) if raw is not None else None

    async def read_usage(self, sid: str) -> tuple[JSON, JSON | None]:
        """The session's totals (`_USAGE_COUNTERS` and `messages`) and its newest assistant
        message's usage, in one round trip whatever the session's length."""
        reply = await self._read_usage(keys=[self.keys.usage(sid)])
        names = (*_USAGE_COUNTERS, "messages")
        totals = {name: float(text(value)) if value is not None else 0.0
                  for name, value in zip(names, reply[:len(names)], strict=True)}
        last = reply[len(names)] if len(reply) > len(names) else None
        return totals, json.loads(last) if last else None

    async def upstream_names(self, sids: list[str]) -> dict[str, str]:
        """The opencode server of each session that has one recorded."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.get(self.keys.session_upstream(sid))
            found = await pipe.execute()
        return {sid: text(name) for sid, name in zip(sids, found, strict=True)
                if name is not None}

    async def parent_ids(self, sids: list[str]) -> dict[str, str | None]:
        """The parent of each session (None for a top-level or unknown one), in one round trip."""
        found = await self._get_each([self.keys.session(sid) for sid in sids])
        return {sid: json.loads(raw).get("parentID") if raw is not None else None
                for sid, raw in zip(sids, found, strict=True)}

    async def child_ids(self, sid: str) -> list[str]:
        return sorted(text(c) for c in await self.redis.smembers(self.keys.children(sid)))

    async def family(self, sid: str, limit: int = 1000) -> list[str]:
        """The session and all its sub-agent sessions, depth first (at most `limit`).

        One round trip per generation of sub-agents, however many sessions each has."""
        children: dict[str, list[str]] = {}
        generation = [sid]
        while generation and len(children) < limit:
            async with self.redis.pipeline(transaction=False) as pipe:
                for member in generation:
                    pipe.smembers(self.keys.children(member))
                found = await pipe.execute()
            for member, members in zip(generation, found, strict=True):
                children[member] = sorted(text(c) for c in members)
            generation = [c for member in generation for c in children[member]
                          if c not in children]
        ordered: list[str] = []
        todo = [sid]
        while todo and len(ordered) < limit:
            current = todo.pop()
            if current not in ordered:
                ordered.append(current)
                todo.extend(children.get(current, ()))
        return ordered

    async def pending_request(self, sids: list[str], request_id: str) -> tuple[str, JSON] | None:
        """The first of `sids` with a pending request of that id, and the request."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hget(self.keys.requests(sid), request_id)
            found = await pipe.execute()
        return next(((sid, json.loads(raw)) for sid, raw in zip(sids, found, strict=True)
                     if raw is not None),
                    None)

    async def pending_requests(self, sids: list[str]) -> list[JSON]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hvals(self.keys.requests(sid))
            found = await pipe.execute()
        requests = [json.loads(raw) for values in found for raw in values]
        return sorted(requests, key=lambda r: r.get("id", ""))

    # ----- staged writes -----------------------------------------------------------------
    def put_session(self, stage: Staging, info: JSON, upstream: str | None = None) -> None:
        """Stages a session; `upstream` names the opencode server that holds it."""
        sid = info["id"]
        pipe = stage.on(sid)
        pipe.set(self.keys.session(sid), dumps(info))
        if upstream is not None:
            pipe.set(self.keys.session_upstream(sid), upstream)
        created = (info.get("time") or {}).get("created") or 0
        stage.indexes.zadd(self.keys.session_list, {sid: created})
        if info.get("parentID"):  # the parent's keys: its own slot
            stage.on(info["parentID"]).sadd(self.keys.children(info["parentID"]), sid)
        if self.search is not None:
            self.search.stage_title(stage, info)

    def put_message(self, stage: Staging, info: JSON) -> None:
        sid, mid = info["sessionID"], info["id"]
        pipe = stage.on(sid)
        pipe.set(self.keys.message(sid, mid), dumps(info))
        pipe.zadd(self.keys.session_messages(sid), {mid: 0})
        stage.indexes.hset(self.keys.message_index, mid, sid)

    async def stage_usage(self, pipe: Pipeline, info: JSON) -> None:
        """Stages an assistant message's usage into its session's totals (others: nothing)."""
        usage = message_usage(info)
        if usage is not None:
            await self._put_usage(keys=[self.keys.usage(info["sessionID"])],
                                  args=[info["id"], dumps(usage)], client=pipe)

    def put_part(self, pipe: Pipeline, part: JSON) -> None:
        sid, mid, pid = part["sessionID"], part["messageID"], part["id"]
        pipe.set(self.keys.part(sid, pid), dumps(part))
        pipe.zadd(self.keys.message_parts(sid, mid), {pid: 0})

    def put_json(self, pipe: Pipeline, key: str, value: Any) -> None:
        pipe.set(key, dumps(value))

    def put_request(self, pipe: Pipeline, sid: str, request: JSON) -> None:
        pipe.hset(self.keys.requests(sid), request["id"], dumps(request))

    def remove_request(self, pipe: Pipeline, sid: str, request_id: str) -> None:
        pipe.hdel(self.keys.requests(sid), request_id)

    def remove_part(self, pipe: Pipeline, sid: str, mid: str, pid: str) -> None:
        pipe.delete(self.keys.part(sid, pid))
        pipe.zrem(self.keys.message_parts(sid, mid), pid)
        if self.search is not None:
            self.search.stage_remove_part(pipe, sid, pid)

    async def stage_remove_message(self, stage: Staging, sid: str, mid: str) -> None:
        """Stages the removal of a message with its parts (read at EXEC time)."""
        pipe = stage.on(sid)
        keys = [self.keys.session_messages(sid), self.keys.message(sid, mid),
                self.keys.message_parts(sid, mid), self.keys.search_postings(sid)]
        await self._remove_message(keys=keys, args=[mid, self.keys.part(sid, "")], client=pipe)
        await self._put_usage(keys=[self.keys.usage(sid)], args=[mid, ""], client=pipe)
        stage.indexes.hdel(self.keys.message_index, mid)

    async def stage_remove_session(self, stage: Staging, sid: str, parent_id: str | None,
                                   keep_owner: bool = False) -> None:
        """Stages the removal of a session and everything it holds (read at EXEC time).

        `keep_owner` (pruning: opencode still has the session) keeps who owns it, its team and
        its share links, so reading it back later re-imports it for the same principal."""
        # Pruning keeps who owns the session, its team and its share links: all stay valid
        # once the session is read back from opencode.
        kept = {self.keys.session_owner(sid), self.keys.session_team(sid), self.keys.shares(sid),
                self.keys.share_digests(sid)} if keep_owner else set()
        own = [k for k in self.keys.fixed_session_keys(sid)
               if k != self.keys.session_messages(sid) and k not in kept]
        pipe = stage.on(sid)
        args = [self.keys.message(sid, ""), self.keys.part(sid, "")]
        await self._remove_session(keys=[self.keys.session_messages(sid), *own], args=args,
                                   client=pipe)
        # The global indexes follow: the message index from the ids removed (known at EXEC).
        stage.then(pipe, lambda mids, follow_up: _forget_messages(follow_up, self.keys, mids))
        stage.indexes.zrem(self.keys.session_list, sid)
        stage.indexes.hdel(self.keys.published, sid)
        if self.search is not None:  # its postings go with its keys; its hints: read now
            words = (await self.search.hints_of([sid]))[sid]
            self.search.stage_drop_hints(stage.indexes, sid, words)
        if parent_id:  # the parent's keys live in another hash slot
            stage.on(parent_id).srem(self.keys.children(parent_id), sid)


def _forget_messages(pipe: Pipeline, keys: Keys, mids: list[bytes]) -> None:
    if mids:
        pipe.hdel(keys.message_index, *mids)
