"""Rate limits shared by every relay replica: counters live in Redis, changed by Lua scripts.

Scripts read the clock with Redis' TIME so replicas with skewed clocks still agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..store.keys import Keys
from ..store.scripts import Script

logger = logging.getLogger("opencode_relay.limits")

# Sliding window: one ZSET member per accepted request, scored by its time.
# Returns -1 when accepted, else the milliseconds until the oldest one leaves the window.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, window - (now - tonumber(oldest[2])))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""

# Concurrency slots: one ZSET member per open stream, scored by when it lapses unless renewed,
# so the slots of a replica that died free themselves.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

# KEYS: one principal's slots (one key: one hash slot). ARGV: the TTL, then the slot ids.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

STREAM_RETRY_SECONDS = 5


class PromptLimiter:
    def __init__(self, redis: Redis, keys: Keys, per_minute: int) -> None:
        self.redis = redis
        self.keys = keys
        self.per_minute = per_minute
        self._window = Script(redis, _WINDOW)

    async def hit(self, principal_id: str) -> int | None:
        """Counts one prompt; None when allowed, else seconds to wait."""
        if self.per_minute <= 0:
            return None
        wait_ms = await self._window(keys=[self.keys.rate_prompts(principal_id)],
                                     args=[self.per_minute, 60_000, uuid.uuid4().hex])
        return None if int(wait_ms) < 0 else max(1, math.ceil(int(wait_ms) / 1000))


class StreamSlots:
    """At most `limit` open SSE streams per principal, across replicas."""

    def __init__(self, redis: Redis, keys: Keys, limit: int, ttl_seconds: float = 30.0) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.ttl_ms = int(ttl_seconds * 1000)
        self._held: dict[str, str] = {}  # slot id -> key, for renewal
        self._task: asyncio.Task[None] | None = None
        self._acquire = Script(redis, _ACQUIRE)
        self._renew = Script(redis, _RENEW)

    async def acquire(self, principal_id: str) -> str | None:
        """A slot id, or None when the principal has `limit` streams open already."""
        slot = uuid.uuid4().hex
        if self.limit <= 0:
            return slot
        key = self.keys.rate_streams(principal_id)
        if not await self._acquire(keys=[key], args=[self.limit, self.ttl_ms, slot]):
            return None
        self._held[slot] = key
        return slot

    async def release(self, slot: str) -> None:
        key = self._held.pop(slot, None)
        if key is not None:
            try:
                await self.redis.zrem(key, slot)
            except RedisError as exc:  # it lapses by itself within the TTL
                logger.warning("could not release a stream slot: %s", exc)

    async def renew_all(self) -> None:
        by_key: dict[str, list[str]] = {}
        for slot, key in list(self._held.items()):
            by_key.setdefault(key, []).append(slot)
        keys = list(by_key)
        for start in range(0, len(keys), 500):  # one script call per principal, pipelined
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys[start:start + 500]:
                    await self._renew(keys=[key], args=[self.ttl_ms, *by_key[key]], client=pipe)
                await pipe.execute()

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew_forever())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.renew_all()
            except RedisError as exc:
                logger.warning("could not renew stream slots: %s", exc)
