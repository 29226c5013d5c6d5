"""The one place that builds the Redis client from the settings: one node, or a Redis Cluster.

`REDIS_URL` names one node. With `RELAY_REDIS_CLUSTER` unset the node is asked (`INFO cluster`)
whether it is part of a cluster; `true`/`false` skip the question. A cluster gets redis-py's
`RedisCluster`, which learns the other nodes from this one and follows slots as they move (a
failover included). Both clients have the same command interface; the rest of the relay is typed
against `Redis` and keeps every atomic step (transaction, script) to one hash slot, so it runs
unchanged on either (store/staging.py groups an ingest batch's writes by slot).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from ..config import Settings

logger = logging.getLogger("opencode_relay.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 3, "health_check_interval": 30,
                            "max_connections": 500}


# Per cluster client: a plain client of each primary, for transactions (see `transaction`).
_NODE_CLIENTS: weakref.WeakKeyDictionary[RedisCluster, dict[str, Redis]] = (
    weakref.WeakKeyDictionary())


def transaction(redis: Redis, key: str) -> Pipeline:
    """A MULTI/EXEC pipeline for keys in `key`'s hash slot.

    On a cluster it is a plain pipeline of the primary that serves the slot: redis-py's own
    cluster transactions run every queued command in a thread of its own (with its own event
    loop), far too slow for ingest. A slot that moved (a failover) fails the transaction with
    a connection or MOVED error; `refresh` then relearns the slots."""
    if not isinstance(redis, RedisCluster):
        return redis.pipeline(transaction=True)
    node = redis.get_node_from_key(key)
    clients = _NODE_CLIENTS.setdefault(redis, {})
    client = clients.get(node.name)
    if client is None:
        client = clients[node.name] = Redis(host=node.host, port=node.port, **_node_options(redis))
    return client.pipeline(transaction=True)


def _node_options(cluster: RedisCluster) -> dict[str, Any]:
    """The cluster client's connection options (password, TLS, timeouts) for one node."""
    kwargs = dict(cluster.nodes_manager.connection_kwargs)
    for name in ("host", "port", "connection_class", "connection_pool", "redis_connect_func",
                 "retry", "cache", "event_dispatcher"):
        kwargs.pop(name, None)
    return {k: v for k, v in kwargs.items()
            if k in {"username", "password", "socket_timeout", "socket_connect_timeout",
                     "ssl", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
                     "health_check_interval", "decode_responses"}}


async def refresh(redis: Redis) -> None:
    """After a command failed on a cluster (a node down, a slot moved): relearn which node
    serves which slot, from any node that answers (never raises: the caller retries)."""
    if isinstance(redis, RedisCluster):
        for client in _NODE_CLIENTS.pop(redis, {}).values():
            await client.aclose()
        try:
            await redis.nodes_manager.initialize()
        except (RedisError, RedisClusterException) as exc:
            logger.warning("could not relearn the cluster's slots yet: %s", exc)


async def close(redis: Redis) -> None:
    """Closes the client and, on a cluster, the clients of its nodes."""
    if isinstance(redis, RedisCluster):
        for client in _NODE_CLIENTS.pop(redis, {}).values():
            await client.aclose()
    await redis.aclose()


def is_cluster(redis: Redis) -> bool:
    """Whether `redis` is a cluster client (built by `connect`)."""
    return isinstance(redis, RedisCluster)


def in_cluster_pipeline(client: object) -> bool:
    return isinstance(client, ClusterPipeline)


async def cluster_enabled(url: str) -> bool:
    """Asks the node at `url` whether it runs in cluster mode."""
    probe = Redis.from_url(url, socket_connect_timeout=3)
    try:
        info = await probe.info("cluster")
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        await probe.aclose()


def build_client(url: str, cluster: bool) -> Redis:
    """The client for `url`: `RedisCluster` (typed as `Redis`: same commands) or `Redis`."""
    if cluster:
        # A cluster has only database 0; redis-py refuses a URL naming one.
        url = url.rsplit("/", 1)[0] if url.rstrip("/").rsplit("/", 1)[-1].isdigit() else url
        client = RedisCluster.from_url(url, socket_connect_timeout=3, health_check_interval=30,
                                       max_connections=500)
        return cast(Redis, client)
    return Redis.from_url(url, **_OPTIONS)


async def connect(settings: Settings) -> Redis:
    """The Redis client the relay uses, cluster or not (see the module's docstring)."""
    url = settings.redis_url or DEFAULT_URL
    cluster = settings.redis_cluster
    if cluster is None:
        try:
            cluster = await cluster_enabled(url)
        except RedisError as exc:
            # Unreachable now: a single node is assumed (routes answer 503 until it is back);
            # a cluster needs RELAY_REDIS_CLUSTER=true to start while its node is down.
            logger.warning("could not ask Redis whether it is a cluster (%s); "
                           "assuming one node", exc)
            cluster = False
    client = build_client(url, cluster)
    if cluster:
        await client.initialize()  # learns the slots (`transaction` needs them)
    return client
