"""Lua scripts that run the same on one Redis and on a Redis Cluster, directly or staged.

redis-py loads a script by its SHA and, staged on a pipeline, loads it before the pipeline
runs, but a cluster pipeline does not: there the script's source goes with the call (EVAL).
Every script here keeps to the keys it is given, all in one hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from .connect import in_cluster_pipeline


class Script:
    def __init__(self, redis: Redis, source: str) -> None:
        self.source = source
        self._script = redis.register_script(source)

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = (),
                       client: Any = None) -> Any:
        if in_cluster_pipeline(client):
            # Queued, not awaited: awaiting a cluster pipeline (re)initialises it.
            client.eval(self.source, len(keys), *keys, *args)
            return client
        return await self._script(keys=list(keys), args=list(args), client=client)
