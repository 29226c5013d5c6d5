"""The writes of one commit, grouped by hash slot (Redis Cluster allows no cross-slot MULTI).

`on(sid)` is the pipeline for the keys of session `sid` (all under its `{sid}` hash tag);
`indexes` takes the global keys that only index sessions (the session list, the message index,
pruned sessions, search hints). `commit()` runs each session's writes as one transaction in its
slot, then the indexes and whatever `then(…)` callbacks staged from the sessions' replies, in
one non-transactional round trip: indexes may lag the sessions by that step, never lead them
for long, and every reader of an index checks what it names (docs/architecture.md).

On one Redis (`split=False`) all sessions and the indexes share one MULTI; the steps and their
order are the same, so both modes run one code path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError, ResponseError, TimeoutError, WatchError

from .connect import is_cluster, refresh, transaction

Then = Callable[[Any, Pipeline], None]  # a reply of a session's transaction, the follow-up pipe


class Staging:
    def __init__(self, redis: Redis, split: bool | None = None,
                 watched: tuple[str, Pipeline] | None = None) -> None:
        """`split`: one transaction per slot (default: on a cluster only). `watched`: a session
        and a transaction pipeline that WATCHes its keys, to stage that session on (committed
        first; a WatchError commits nothing)."""
        self.redis = redis
        split = is_cluster(redis) if split is None else split
        self.split = split
        self._one: Pipeline | None = None
        self._slots: dict[str, Pipeline] = {}
        self._watched = watched[1] if watched else None
        if not split:
            self._one = watched[1] if watched else transaction(redis, "")
        elif watched:
            self._slots[watched[0]] = watched[1]
        self._indexes: Pipeline | None = None
        self._then: list[tuple[Pipeline, int, Then]] = []

    def on(self, sid: str) -> Pipeline:
        """The transaction of session `sid`'s slot (on one Redis: the one transaction)."""
        if self._one is not None:
            return self._one
        pipe = self._slots.get(sid)
        if pipe is None:
            pipe = self._slots[sid] = transaction(self.redis, f"{{{sid}}}")
        return pipe

    @property
    def indexes(self) -> Pipeline:
        """Global index writes, after the sessions' transactions (on one Redis: inside it)."""
        if self._one is not None:
            return self._one
        if self._indexes is None:
            self._indexes = self.redis.pipeline(transaction=False)
        return self._indexes

    def follow_up(self) -> Pipeline:
        """Writes staged from replies: always after the transactions, never atomic with them."""
        if self._indexes is None:
            self._indexes = self.redis.pipeline(transaction=False)
        return self._indexes

    def then(self, pipe: Pipeline, callback: Then) -> None:
        """Calls `callback` with the reply of the command last staged on `pipe`, after commit."""
        self._then.append((pipe, len(pipe) - 1, callback))

    @property
    def sessions(self) -> list[str]:
        return list(self._slots)

    async def commit(self) -> None:
        """The sessions' transactions (a watched one first: its WatchError commits nothing;
        the others at once, each in its own slot), then the indexes and follow-ups."""
        pipes = [p for p in ([self._one] if self._one is not None else self._slots.values())
                 if len(p)]
        by_pipe: dict[int, Any] = {}
        try:
            if self._watched is not None and self._watched in pipes:
                by_pipe[id(self._watched)] = await self._watched.execute()
                pipes.remove(self._watched)
            for pipe, replies in zip(pipes, await asyncio.gather(*(p.execute() for p in pipes)),
                                     strict=True):
                by_pipe[id(pipe)] = replies
        except (ConnectionError, TimeoutError, ResponseError) as exc:
            if self.split and not isinstance(exc, WatchError):
                await refresh(self.redis)  # a slot moved (a failover): relearn them
            raise
        for pipe, index, callback in self._then:
            callback(by_pipe[id(pipe)][index], self.follow_up())
        if self._indexes is not None and len(self._indexes):
            await self._indexes.execute()

    async def __aenter__(self) -> Staging:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.reset()

    async def reset(self) -> None:
        for pipe in [self._one, self._indexes, *self._slots.values()]:
            if pipe is not None:
                await pipe.reset()
