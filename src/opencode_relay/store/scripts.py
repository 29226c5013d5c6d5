"""Lua scripts that run the same on one Redis and on a Redis Cluster, directly or staged.

Called directly, a script runs by its SHA (redis-py loads it when Redis answers NOSCRIPT).
Staged on a pipeline (a transaction, most often), its source goes with the call (EVAL): a SHA
that Redis lacks (restarted, or a replica promoted since) would fail inside the transaction and
leave the rest of it applied, so redis-py guards a pipeline of SHAs with a `SCRIPT EXISTS` round
trip before every execute, one more wait per ingest commit than the transaction itself. With
the source, Redis hashes a few KB and finds the compiled script in its cache.
Every script here keeps to the keys it is given, all in one hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import NoScriptError


class Script:
    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self._script = redis.register_script(source)

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = (),
                       client: Any = None) -> Any:
        if isinstance(client, Pipeline | ClusterPipeline):
            # Queued, not awaited: awaiting a cluster pipeline (re)initialises it.
            client.eval(self.source, len(keys), *keys, *args)
            return client
        try:
            return await self._script(keys=list(keys), args=list(args), client=client)
        except NoScriptError:
            # A cluster may load the script on another node than the key's (or a replica
            # promoted since has none): the source itself, which also caches it there.
            return await (client or self.redis).eval(self.source, len(keys), *keys, *args)
