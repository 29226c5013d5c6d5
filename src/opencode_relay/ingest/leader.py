"""One ingesting relay per Redis: a lease in Redis, renewed while held.

Every replica serves clients from the Redis log; only the lease holder reads opencode's event
stream, so events are logged once however many replicas run. The lease is redis-py's `Lock`
(a key set with NX and a TTL, holding this relay's token), never waited for: a relay that does
not get it serves from Redis and asks again later.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError, RedisError

logger = logging.getLogger("opencode_relay.ingest")


class Lease:
    def __init__(self, redis: Redis, key: str, ttl_seconds: float = 10.0) -> None:
        self.key = key
        self.ttl_seconds = ttl_seconds
        # Not thread-local: the task that renews and the one that releases on stop differ.
        self._lock = Lock(redis, key, timeout=ttl_seconds, blocking=False, thread_local=False)

    @property
    def renew_every(self) -> float:
        return self.ttl_seconds / 3

    @property
    def held(self) -> bool:
        """Whether this relay took the lease (it may have lapsed in Redis since)."""
        return self._lock.local.token is not None

    async def acquire(self) -> bool:
        """Takes the lease if it is free, or renews it if this relay still holds it."""
        if self.held and await self.renew():
            return True
        acquired = await self._lock.acquire(blocking=False)  # redis-py leaves it unannotated
        return bool(acquired)

    async def renew(self) -> bool:
        """Resets the lease's TTL; False when it lapsed and is gone or someone else's."""
        if not self.held:
            return False
        try:
            await self._lock.reacquire()
        except LockNotOwnedError:
            self._lock.local.token = None  # lapsed: the next acquire starts afresh
            return False
        return True

    async def release(self) -> None:
        """Gives the lease up so another relay takes over at once; never raises.

        On stop, with Redis possibly gone already: the lease then lapses by itself."""
        if not self.held:
            return
        try:
            await self._lock.release()
        except LockNotOwnedError:
            logger.debug("the ingest lease had lapsed before its release")
        except (RedisError, OSError) as exc:
            logger.info("ingest lease not released (it lapses within %.0f s): %s",
                        self.ttl_seconds, exc)
