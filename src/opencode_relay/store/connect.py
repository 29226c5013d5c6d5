"""The one place that builds the relay's Redis client from settings, and checks it at start.

Three ways to reach Redis:

- `REDIS_URL` (`redis://`, `rediss://`, `unix://`): one server.
- `REDIS_URL` naming a node of a Redis Cluster: with `RELAY_REDIS_CLUSTER` unset the node is
  asked (`INFO cluster`) whether it is part of a cluster; `true`/`false` skip the question. A
  cluster gets redis-py's `RedisCluster`, which learns the other nodes from this one and follows
  slots as they move (a failover included). Both clients have the same command interface; the
  rest of the relay is typed against `Redis` and keeps every atomic step (transaction, script)
  to one hash slot, so it runs unchanged on either (store/staging.py groups an ingest batch's
  writes by slot; `transaction` runs one slot's MULTI/EXEC on the primary that serves it).
- `RELAY_REDIS_SENTINELS` (`host:port,…`) with `RELAY_REDIS_MASTER` (the name the Sentinels
  watch): redis-py's Sentinel-managed pool asks the Sentinels for the current primary whenever
  it opens a connection, and drops its connections when the old primary fails or answers
  READONLY (it was demoted), so after a failover the relay reconnects to the promoted replica
  by itself. Commands that were in flight fail once (routes answer 503, the ingestor and the
  hub retry); nothing else needs to know which server is the primary.

`check` is the start-time verdict `opencode-relay serve` gives before it listens: a setting
that cannot work says what to fix in one line (`ConfigurationError`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.connection import parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from ..errors import ConfigurationError
from .packing import packed_in_c

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger("opencode_relay.redis")

# Every connection: a refused or unreachable server fails fast, a server that stops answering
# fails a command after socket_timeout (the hub's XREAD blocks 2 s, well under it).
CLIENT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 3, "socket_timeout": 10,
                                  "health_check_interval": 30}
MAX_CONNECTIONS = 500
SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def check_url(url: str) -> str:
    """`url` if redis-py can connect with it; otherwise ValueError saying what is wrong."""
    if not url.startswith(SCHEMES):
        raise ValueError(f"REDIS_URL must start with {', '.join(SCHEMES)} "
                         f"(got {_scheme_of(url)!r})")
    try:
        parse_url(url)
    except ValueError as exc:  # a port that is not a number…
        raise ValueError(f"REDIS_URL cannot be parsed: {exc}") from None
    # redis-py takes a database that is not a number as 0, silently: say so instead.
    database = urlsplit(url).path.strip("/") if not url.startswith("unix://") else ""
    if database and not database.isdigit():
        raise ValueError(f"REDIS_URL cannot be parsed: the database {database!r} must be a "
                         "number (redis://host:port/0)")
    return url


def _scheme_of(url: str) -> str:
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://" if sep else url[:20]


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (a bracketed IPv6 host too) into addresses; ValueError if not."""
    found: list[tuple[str, int]] = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"RELAY_REDIS_SENTINELS entry {entry!r} must be host:port")
        found.append((host, int(port)))
    if not found:
        raise ValueError("RELAY_REDIS_SENTINELS names no Sentinel (host:port,host:port,…)")
    return found


def redis_client(settings: Settings, url: str | None = None,
                 cluster: bool | None = None) -> Redis:
    """The relay's Redis client: Sentinel-managed when Sentinels are configured, else `url`
    (default: REDIS_URL), a cluster client when `cluster` (default: RELAY_REDIS_CLUSTER) is
    true. Not connected yet: connections open on first use (a cluster client's `initialize`
    learns the slots; `connect` does both and detects a cluster)."""
    if settings.redis_sentinels:
        return _sentinel_client(settings)
    return build_client(url or settings.redis_url or DEFAULT_URL,
                        bool(settings.redis_cluster if cluster is None else cluster))


def build_client(url: str, cluster: bool) -> Redis:
    """The client for `url`: `RedisCluster` (typed as `Redis`: same commands) or `Redis`."""
    if cluster:
        # A cluster has only database 0; redis-py refuses a URL naming one.
        url = url.rsplit("/", 1)[0] if url.rstrip("/").rsplit("/", 1)[-1].isdigit() else url
        client = RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS, **CLIENT_OPTIONS)
        return cast(Redis, client)
    return packed_in_c(Redis.from_url(url, max_connections=MAX_CONNECTIONS, **CLIENT_OPTIONS))


async def connect(settings: Settings, url: str | None = None) -> Redis:
    """The Redis client the relay uses: Sentinel, cluster or one node (see the docstring)."""
    if settings.redis_sentinels:
        return _sentinel_client(settings)
    url = url or settings.redis_url or DEFAULT_URL
    cluster = settings.redis_cluster
    if cluster is None:
        try:
            cluster = await cluster_enabled(url)
        except (RedisError, OSError) as exc:
            # Unreachable now: a single node is assumed (routes answer 503 until it is back);
            # a cluster needs RELAY_REDIS_CLUSTER=true to start while its node is down.
            logger.warning("could not ask Redis whether it is a cluster (%s); "
                           "assuming one node", exc)
            cluster = False
    client = build_client(url, cluster)
    if cluster:
        await client.initialize()  # learns the slots (`transaction` needs them)
    return client


async def cluster_enabled(url: str) -> bool:
    """Asks the node at `url` whether it runs in cluster mode."""
    probe = Redis.from_url(url, **CLIENT_OPTIONS)
    try:
        info = await probe.info("cluster")
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        await probe.aclose()


def is_cluster(redis: Redis) -> bool:
    """Whether `redis` is a cluster client (built by `connect`)."""
    return isinstance(redis, RedisCluster)


# Per cluster client: a plain client of each primary, for transactions (see `transaction`).
_NODE_CLIENTS: weakref.WeakKeyDictionary[RedisCluster, dict[str, Redis]] = (
    weakref.WeakKeyDictionary())


class SentOnce(Pipeline):
    """A MULTI/EXEC pipeline that redis-py never sends twice.

    redis-py retries a pipeline, a transaction included, after a connection error or a timeout
    (its connections' `Retry`: in redis-py 8, 10 retries with backoff for `Redis(host=…,
    port=…)`, a cluster node's client here; none for a client from a URL, unless given). When
    EXEC was applied and only its reply was lost, the retry applies the transaction once more:
    an ingest batch logged twice, every one of its events doubled on every stream. Here the
    first such error is raised to the caller instead (a WatchError as before when keys were
    WATCHed), after redis-py dropped the connection: the ingestor then reconnects and
    reconciles (a batch that was applied recorded its durable sequence with it, so none of it
    is replayed; one that was not is replayed from opencode's history), a route answers 503.
    Connecting, and the health check before a command, still retry as configured: nothing of
    the transaction was sent then. Only transactions are built this way; reads and other
    commands keep the client's retries."""

    async def _disconnect_raise_on_watching(self, conn: Any, error: Exception,
                                            *args: Any, **kwargs: Any) -> None:
        # redis-py's failure hook, called before it decides to retry: raising ends the retries.
        await super()._disconnect_raise_on_watching(conn, error, *args, **kwargs)
        raise error


def transaction(redis: Redis, key: str) -> Pipeline:
    """A MULTI/EXEC pipeline for keys in `key`'s hash slot, never retried (`SentOnce`).

    On a cluster it is a plain pipeline of the primary that serves the slot: redis-py's own
    cluster transactions run every queued command in a thread of its own (with its own event
    loop), far too slow for ingest. A slot that moved (a failover) fails the transaction with
    a connection or MOVED error; `refresh` then relearns the slots."""
    client = redis
    if isinstance(redis, RedisCluster):
        node = redis.get_node_from_key(key)
        clients = _NODE_CLIENTS.setdefault(redis, {})
        found = clients.get(node.name)
        if found is None:
            found = clients[node.name] = packed_in_c(
                Redis(host=node.host, port=node.port, **_node_options(redis)))
        client = found
    return SentOnce(client.connection_pool, client.response_callbacks, True, None)


def _node_options(cluster: RedisCluster) -> dict[str, Any]:
    """The cluster client's connection options (password, TLS, timeouts) for one node."""
    kwargs = dict(cluster.nodes_manager.connection_kwargs)
    return {k: v for k, v in kwargs.items()
            if k in {"username", "password", "socket_timeout", "socket_connect_timeout",
                     "ssl", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
                     "health_check_interval", "decode_responses"}}


async def refresh(redis: Redis) -> None:
    """After a command failed on a cluster (a node down, a slot moved): relearn which node
    serves which slot, from any node that answers, and which node to ask where a command goes
    (never raises: the caller retries)."""
    if isinstance(redis, RedisCluster):
        for client in _NODE_CLIENTS.pop(redis, {}).values():
            await client.aclose()
        try:
            await redis.nodes_manager.initialize()
            await _ask_a_live_node(redis)
        except (RedisError, RedisClusterException, OSError) as exc:
            logger.warning("could not relearn the cluster's slots yet: %s", exc)


async def _ask_a_live_node(redis: RedisCluster) -> None:
    """redis-py learns where a command with movable keys goes (XREAD: the hub's read) by asking
    one node, `COMMAND GETKEYS`, before its own retries: the node it chose when it started,
    kept even when relearning the slots. That node down, every such command fails for good.
    So: the first primary that answers `COMMAND` (the default node first) is asked from now."""
    default = redis.get_default_node()
    for node in sorted(redis.get_primaries(), key=lambda node: node is not default):
        try:
            await redis.commands_parser.initialize(node)
            return
        except (RedisError, OSError):
            continue
    raise RedisClusterException("no primary answered COMMAND")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _sentinel_client(settings: Settings) -> Redis:
    assert settings.redis_sentinels and settings.redis_master  # Settings checks both are set
    sentinel_password = _secret(settings.redis_sentinel_password)
    sentinel = Sentinel(parse_sentinels(settings.redis_sentinels),
                        sentinel_kwargs={**CLIENT_OPTIONS, "password": sentinel_password},
                        password=_secret(settings.redis_password), **CLIENT_OPTIONS)
    client: Redis = sentinel.master_for(settings.redis_master, max_connections=MAX_CONNECTIONS)
    return packed_in_c(client)


async def usable(redis: Redis) -> None:
    """Returns if Redis serves data; raises (a RedisError) otherwise. PING alone would pass
    while Redis is still loading its data set after a restart, when every other command fails
    with LOADING: readiness and the start check must not say yes then."""
    if isinstance(redis, RedisCluster):  # every primary: {node: its INFO}
        found = await redis.info("persistence", target_nodes=RedisCluster.PRIMARIES)
        nodes = [info for info in found.values() if isinstance(info, dict)]
    else:
        nodes = [await redis.info("persistence")]
    if any(info.get("loading") for info in nodes):
        raise BusyLoadingError("Redis is loading its data set")


async def close(redis: Redis) -> None:
    """Closes the client and, for a Sentinel-managed one, its connections to the Sentinels;
    on a cluster, the clients of its nodes (`transaction`)."""
    if isinstance(redis, RedisCluster):
        for client in _NODE_CLIENTS.pop(redis, {}).values():
            await client.aclose()
        await redis.aclose()
        return
    pool = redis.connection_pool
    await redis.aclose()
    if isinstance(pool, SentinelConnectionPool):
        await asyncio.gather(*(s.aclose() for s in pool.sentinel_manager.sentinels),
                             return_exceptions=True)


@dataclass(frozen=True)
class _Problem:
    message: str
    lasting: bool  # waiting will not fix it (a wrong name, a refused password)


async def check(settings: Settings, url: str | None = None,
                timeout_seconds: float | None = None) -> None:
    """Waits up to `timeout_seconds` (default RELAY_REDIS_START_TIMEOUT_SECONDS) until Redis
    answers; raises ConfigurationError with one line saying what to fix if it never does.

    A problem waiting cannot fix (a master name the Sentinels do not know, a refused password)
    is reported at once."""
    wait = settings.redis_start_timeout_seconds if timeout_seconds is None else timeout_seconds
    deadline = asyncio.get_running_loop().time() + wait
    delay = 0.25
    while True:
        problem = await _probe(settings, url)
        if problem is None:
            return
        left = deadline - asyncio.get_running_loop().time()
        if problem.lasting or left <= 0:
            waited = "" if problem.lasting or wait <= 0 else f" (waited {wait:.0f}s)"
            raise ConfigurationError(problem.message + waited)
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)


async def _probe(settings: Settings, url: str | None) -> _Problem | None:
    if settings.redis_sentinels:
        problem = await _probe_sentinels(settings)
        if problem is not None:
            return problem
        where = f"the primary {settings.redis_master!r} the Sentinels name"
    else:
        where = f"Redis at {_redacted(url or settings.redis_url or DEFAULT_URL)}"
    redis = redis_client(settings, url)
    try:
        await usable(redis)
    except AuthenticationError as exc:
        variable = "RELAY_REDIS_PASSWORD" if settings.redis_sentinels else "REDIS_URL"
        return _Problem(f"{where} refused the password ({exc}); fix it in {variable}", True)
    except ResponseError as exc:
        return _Problem(f"{where} refused INFO: {exc}", True)
    except (RedisError, OSError) as exc:
        hint = ("start it, or fix RELAY_REDIS_SENTINELS/RELAY_REDIS_MASTER"
                if settings.redis_sentinels else "start it, or fix REDIS_URL")
        return _Problem(f"{where} cannot be reached ({_reason(exc)}); {hint}", False)
    finally:
        await close(redis)
    return None


async def _probe_sentinels(settings: Settings) -> _Problem | None:
    """Asks each Sentinel about the primary: none answering, the name unknown to all that
    answer, or the primary down, each said in its own words."""
    addresses = parse_sentinels(settings.redis_sentinels or "")
    listed = ", ".join(f"{h}:{p}" for h, p in addresses)
    name = settings.redis_master
    answered: list[dict[str, Any]] = []
    refused: list[str] = []
    for host, port in addresses:
        client = Redis(host=host, port=port, password=_secret(settings.redis_sentinel_password),
                       **CLIENT_OPTIONS)
        try:
            masters = await client.sentinel_masters()  # parsed: {name: {field: value}}
            answered.append(masters if isinstance(masters, dict) else {})
        except AuthenticationError as exc:
            refused.append(_reason(exc))
        except (RedisError, OSError):
            continue
        finally:
            await client.aclose()
    if refused and not answered:
        return _Problem(f"the Sentinels ({listed}) refused the password ({refused[0]}); fix "
                        "RELAY_REDIS_SENTINEL_PASSWORD", True)
    if not answered:
        return _Problem(f"none of the Sentinels in RELAY_REDIS_SENTINELS ({listed}) can be "
                        "reached; start them or fix the addresses", False)
    states = [masters[name] for masters in answered if name in masters]
    if not states:
        known = sorted({n for masters in answered for n in masters})
        return _Problem(f"the Sentinels ({listed}) watch no primary named {name!r}; set "
                        f"RELAY_REDIS_MASTER to one they know: {_names(known)}", True)
    if not any(_usable(state) for state in states):
        return _Problem(f"the Sentinels ({listed}) report the primary {name!r} as down; start "
                        "it or wait for their failover", False)
    return None


def _usable(state: dict[str, Any]) -> bool:
    return bool(state.get("is_master")) and not state.get("is_sdown") and \
        not state.get("is_odown")


def _names(known: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in known) if known else "(none: they watch nothing)"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _redacted(url: str) -> str:
    """The URL without its password (it reaches a terminal or a log)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{host}"
