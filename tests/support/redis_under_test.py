"""Which Redis the integration tests run on: one node, or a 3-primary Redis Cluster
(`RELAY_TEST_REDIS=cluster`), and clients of it for tests that read or write Redis directly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, cast

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.cluster import RedisCluster as SyncRedisCluster

from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.testing.cluster import RedisClusterServer

CLUSTER = os.environ.get("RELAY_TEST_REDIS", "") == "cluster"


class RedisServer(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


def start_redis(data_dir: Path) -> RedisServer:
    if CLUSTER:
        return RedisClusterServer(data_dir / "cluster").start()
    return EmbeddedRedis(data_dir).start()


def redis_client(url: str, **options: Any) -> Redis:
    """An asyncio client of the Redis under test (the cluster client on a cluster)."""
    if CLUSTER:
        return cast(Redis, RedisCluster.from_url(url, **options))
    return Redis.from_url(url, **options)


def sync_redis_client(url: str) -> sync_redis.Redis:
    if CLUSTER:
        return cast(sync_redis.Redis, SyncRedisCluster.from_url(url))
    return sync_redis.Redis.from_url(url)
