"""Waiting for replicas after a commit (`RELAY_REDIS_WAIT_REPLICAS`): Redis' WAIT.

Redis replicates asynchronously: a batch the primary committed may be lost if the primary dies
before a replica has it, and Sentinel then promotes a replica without it. With replicas to wait
for, the ingestor's commit returns only once that many replicas have the batch (or the timeout
passed), so at most the batch in flight is unconfirmed when the primary dies; the ingestor sees
that commit fail and re-syncs from opencode on the new primary.

WAIT counts the writes of the connection it runs on, and a transaction's connection goes back
to the pool with its EXEC. So the wait writes a marker (when the last batch was confirmed) and
WAITs on one connection: replication is one ordered stream, so replicas that acknowledged the
marker hold every batch committed before it.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

logger = logging.getLogger("opencode_relay.ingest")


class ReplicaWait:
    def __init__(self, redis: Redis, marker_key: str, replicas: int, timeout_ms: int) -> None:
        self.redis = redis
        self.marker_key = marker_key
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.short = False  # the last wait timed out with fewer replicas

    async def __call__(self) -> int:
        """Waits until `replicas` replicas hold what was committed so far; how many did.

        After a wait came short (a replica is gone: say the old primary died and the promoted
        one has no replica yet), later batches do not pay the timeout each: they only check
        (ROLE) whether enough replicas are connected again, and wait once they are."""
        if self.short and await self._connected_replicas() < self.replicas:
            return 0
        pipe = self.redis.pipeline(transaction=False)  # one connection: the marker, then WAIT
        pipe.set(self.marker_key, repr(time.time()))
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        _ok, acknowledged = await pipe.execute()
        count = int(acknowledged)
        if count < self.replicas and not self.short:
            logger.warning("only %d of %d Redis replicas confirmed an ingest batch within %d ms; "
                           "a failover now could lose it; batches go on without waiting until "
                           "enough replicas are connected (RELAY_REDIS_WAIT_REPLICAS)",
                           count, self.replicas, self.timeout_ms)
        elif count >= self.replicas and self.short:
            logger.info("Redis replicas confirm ingest batches again")
        self.short = count < self.replicas
        return count

    async def _connected_replicas(self) -> int:
        role = await self.redis.role()  # ["master", offset, [replica, …]] on a primary
        return len(role[2]) if len(role) > 2 and isinstance(role[2], list) else 0
