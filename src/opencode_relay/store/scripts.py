"""Lua scripts that run the same on one Redis and on a Redis Cluster, directly or staged.

redis-py runs a script by its SHA (loading it when Redis answers NOSCRIPT) and, staged on a
pipeline, loads it before the pipeline runs; a cluster pipeline does not, so there the script's
source goes with the call (EVAL), as it does when a cluster node still lacks it.
Every script here keeps to the keys it is given, all in one hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from .connect import in_cluster_pipeline


class Script:
    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self._script = redis.register_script(source)

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = (),
                       client: Any = None) -> Any:
        if in_cluster_pipeline(client):
            # Queued, not awaited: awaiting a cluster pipeline (re)initialises it.
            client.eval(self.source, len(keys), *keys, *args)
            return client
        try:
            return await self._script(keys=list(keys), args=list(args), client=client)
        except NoScriptError:
            # A cluster may load the script on another node than the key's (or a replica
            # promoted since has none): the source itself, which also caches it there.
            return await (client or self.redis).eval(self.source, len(keys), *keys, *args)
