"""How the relay reaches Redis (store/connect.py), what it says when it cannot, and WAIT.

The Sentinel failover itself runs against real Sentinels in tests/test_sentinel.py."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
import redis as sync_redis
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import BusyLoadingError, ConnectionError, DataError, RedisError

from opencode_relay.cli import load_settings
from opencode_relay.config import Settings
from opencode_relay.errors import ConfigurationError
from opencode_relay.launch.embedded import EmbeddedRedis, free_port
from opencode_relay.relay import build_relay
from opencode_relay.store import connect
from opencode_relay.store.keys import Keys
from opencode_relay.store.replication import ReplicaWait
from opencode_relay.testing.cluster import RedisClusterServer
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://user:pw@host:6380/2",
                                 "unix:///run/redis.sock"])
def test_redis_urls_redis_py_can_use_are_accepted(url: str) -> None:
    assert connect.check_url(url) == url


@pytest.mark.parametrize(("url", "problem"), [
    ("http://127.0.0.1:6379", "must start with redis://, rediss://, unix:// (got 'http://')"),
    ("127.0.0.1:6379", "must start with redis://"),
    ("redis://127.0.0.1:sixty/0", "cannot be parsed: Port could not be cast"),
    ("redis://127.0.0.1:6379/zero", "cannot be parsed"),
])
def test_a_redis_url_that_cannot_work_says_why(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="REDIS_URL") as raised:
        connect.check_url(url)
    assert problem in str(raised.value)


def test_sentinel_addresses_are_host_port_pairs() -> None:
    assert connect.parse_sentinels(" s1:26379, [::1]:26380 ,") == [("s1", 26379), ("::1", 26380)]
    for bad in ("s1", "s1:", ":26379", "s1:0", "s1:70000", "s1:port", " , "):
        with pytest.raises(ValueError, match="RELAY_REDIS_SENTINELS"):
            connect.parse_sentinels(bad)


@pytest.mark.parametrize(("given", "problem"), [
    ({"redis_sentinels": "s:26379"}, "RELAY_REDIS_SENTINELS needs RELAY_REDIS_MASTER"),
    ({"redis_master": "relay"}, "RELAY_REDIS_MASTER needs RELAY_REDIS_SENTINELS"),
    ({"redis_sentinels": "s:26379", "redis_master": "relay", "redis_url": "redis://h:1/0"},
     "set either REDIS_URL or RELAY_REDIS_SENTINELS, not both"),
    ({"redis_sentinels": "s:26379", "redis_master": "relay", "redis_cluster": "true"},
     "RELAY_REDIS_CLUSTER=true needs REDIS_URL naming a cluster node"),
    ({"redis_url": "redis://h:1/0", "redis_cluster": "true", "redis_wait_replicas": "1"},
     "RELAY_REDIS_WAIT_REPLICAS applies to one Redis or a Sentinel-managed primary"),
])
def test_settings_take_one_way_to_redis(given: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(**given)


@pytest.mark.parametrize(("variable", "value", "line"), [
    ("REDIS_URL", "http://x", "opencode-relay: invalid setting: REDIS_URL must start with "
                              "redis://, rediss://, unix:// (got 'http://')"),
    ("RELAY_REDIS_WAIT_REPLICAS", "-1", "opencode-relay: invalid setting: "
                                        "RELAY_REDIS_WAIT_REPLICAS: Input should be greater "
                                        "than or equal to 0"),
    ("RELAY_REDIS_START_TIMEOUT_SECONDS", "soon", "opencode-relay: invalid setting: "
                                                  "RELAY_REDIS_START_TIMEOUT_SECONDS: Input "
                                                  "should be a valid number"),
])
def test_an_invalid_setting_is_one_line_naming_its_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        load_settings()
    message = str(exited.value.code)
    assert message.startswith(line) and "\n" not in message


def test_a_sentinel_client_asks_the_sentinels_for_the_named_primary() -> None:
    settings = Settings(redis_sentinels="127.0.0.1:26379,127.0.0.1:26380", redis_master="relay")
    client = connect.redis_client(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "relay"
    assert [s.connection_pool.connection_kwargs["port"]
            for s in pool.sentinel_manager.sentinels] == [26379, 26380]


async def test_a_reachable_redis_passes_the_start_check(redis_server: EmbeddedRedis) -> None:
    await connect.check(Settings(redis_url=redis_server.url), timeout_seconds=0)


async def test_an_unreachable_redis_is_named_without_its_password() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigurationError) as raised:
        await connect.check(Settings(redis_url=url), timeout_seconds=0)
    message = str(raised.value)
    assert "s3cret" not in message
    assert message.startswith(f"Redis at redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]} "
                              "cannot be reached")
    assert message.endswith("start it, or fix REDIS_URL")


async def test_unreachable_sentinels_are_named() -> None:
    sentinels = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    with pytest.raises(ConfigurationError, match="none of the Sentinels in "
                                                 "RELAY_REDIS_SENTINELS .* can be reached"):
        await connect.check(Settings(redis_sentinels=sentinels, redis_master="relay"),
                            timeout_seconds=0)


async def _wait_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_without_its_replicas_the_commit_stops_waiting_until_they_are_back(
        tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    """A Redis with no replica: the first wait times out and warns once; the next ones only
    check ROLE and issue no WAIT, so batches do not each pay the timeout. (One Redis of its
    own: WAIT is for one Redis or Sentinel, not a cluster.)"""
    server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(server.url)
    try:
        await _stops_waiting(redis, keys, caplog)
    finally:
        await redis.aclose()
        server.stop()


async def _stops_waiting(redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    wait = ReplicaWait(redis, keys.ingest_replicated("default"), replicas=1, timeout_ms=50)
    before = await _wait_calls(redis)
    with caplog.at_level(logging.INFO, logger="opencode_relay.ingest"):
        assert await wait() == 0
        assert wait.short
        assert await wait() == 0
        assert await wait() == 0
    assert await _wait_calls(redis) == before + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "only 0 of 1 Redis replicas" in warnings[0].getMessage()
    assert await redis.exists(keys.ingest_replicated("default"))


async def _applied_once_when_its_reply_is_lost(redis: Redis, proxy: CuttableProxy,
                                               key: str) -> None:
    """A transaction through `proxy` whose EXEC reaches Redis and whose reply is lost: the
    caller hears of it (a client that retries, as `Redis(host=…, port=…)` and a cluster node's
    client do by default, sent it again: applied twice)."""
    pipe = connect.transaction(redis, key)
    pipe.incr(key)
    proxy.lose_exec_reply(containing=key.encode())
    with pytest.raises(ConnectionError):
        await pipe.execute()
    assert proxy.lost_replies == 1
    assert await redis.get(key) == b"1"  # applied, once (reads go on retrying as before)


async def test_a_transaction_whose_reply_is_lost_is_not_sent_again(
        redis_server: EmbeddedRedis) -> None:
    proxy = CuttableProxy("127.0.0.1", redis_server.port).start()
    redis = Redis(host="127.0.0.1", port=proxy.port)  # redis-py's default Retry
    try:
        await _applied_once_when_its_reply_is_lost(redis, proxy, f"test-{uuid.uuid4().hex}:n")
    finally:
        await connect.close(redis)
        proxy.stop()


async def test_a_cluster_transaction_whose_reply_is_lost_is_not_sent_again(
        tmp_path: Path) -> None:
    """The same on a cluster: the slot's primary announces the proxy's port as its own, so
    the relay's client reaches it through the proxy."""
    cluster = RedisClusterServer(tmp_path / "cluster").start()
    key = f"test-{{{uuid.uuid4().hex}}}:n"
    owner = cluster.owner_of(key)
    proxy = CuttableProxy("127.0.0.1", owner.port).start()
    try:
        with sync_redis.Redis(port=owner.port) as node:
            node.config_set("cluster-announce-port", proxy.port)
        redis = await connect.connect(Settings(redis_url=f"redis://127.0.0.1:{owner.port}"))
        try:
            assert redis.get_node_from_key(key).port == proxy.port  # type: ignore[attr-defined]
            await _applied_once_when_its_reply_is_lost(redis, proxy, key)
        finally:
            await connect.close(redis)
    finally:
        proxy.stop()
        cluster.stop()


async def test_after_a_failover_refresh_finds_a_node_to_route_reads_by(tmp_path: Path) -> None:
    """redis-py learns where a command with movable keys (XREAD: the hub's read) goes by asking
    one node (COMMAND GETKEYS), the one it chose at start, and outside its own retries. That
    node killed, every such command failed until the relay restarted, however often `refresh`
    relearned the slots: `refresh` also picks a node that answers for it."""
    cluster = RedisClusterServer(tmp_path / "cluster", primaries=3, replicas=1).start()
    try:
        redis = await connect.connect(Settings(redis_url=cluster.url))
        assert isinstance(redis, RedisCluster)
        try:
            key = f"test-{uuid.uuid4().hex}:log"
            # Written on its primary and held by its replica before any kill: replication is
            # asynchronous, and a write that had not reached the replica would be lost.
            node = redis.get_node_from_key(key)
            async with Redis(host=node.host, port=node.port) as primary:
                pipe = primary.pipeline(transaction=False)  # one connection: the write, then WAIT
                pipe.xadd(key, {"e": "1"})
                pipe.execute_command("WAIT", 1, 10_000)
                assert (await pipe.execute())[1] == 1
            asked = redis.commands_parser.node
            victim = next(n for n in cluster.primaries() if n.port == asked.port)
            victim.kill()
            await asyncio.to_thread(cluster.wait_failover, victim)
            found = None
            for _ in range(10):  # as the hub does: refresh after each failed read
                try:
                    found = await redis.xread({key: "0"}, count=1)
                    break
                except (RedisError, OSError):
                    await connect.refresh(redis)
            assert found and found[0][1][0][1] == {b"e": b"1"}
        finally:
            await connect.close(redis)
    finally:
        cluster.stop()


class _Loading:
    """A Redis that answers, but is still loading its data set (INFO persistence: loading:1)."""

    async def info(self, section: str) -> dict[str, int]:
        assert section == "persistence"
        return {"loading": 1}


async def test_a_redis_still_loading_its_data_is_not_usable(redis: Redis) -> None:
    await connect.usable(redis)  # the test Redis serves data
    with pytest.raises(BusyLoadingError, match="loading its data set"):
        await connect.usable(_Loading())  # type: ignore[arg-type]


async def test_a_cluster_is_found_by_asking_checked_on_every_primary_and_not_waited_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`connect` asks the node (INFO cluster) and builds the cluster client; `usable` reads
    every primary's INFO; WAIT (one primary's writes) is not used on a cluster."""
    cluster = RedisClusterServer(tmp_path / "cluster").start()
    try:
        settings = Settings(redis_url=cluster.url, redis_wait_replicas=1,
                            data_dir=tmp_path / "data", opencode_url="http://127.0.0.1:9")
        redis = await connect.connect(settings)
        try:
            assert connect.is_cluster(redis)
            await connect.usable(redis)
            with caplog.at_level(logging.WARNING, logger="opencode_relay"):
                relay = build_relay(settings, redis)
            assert [u.ingestor.after_commit for u in relay.upstreams.values()] == [None]
            assert "RELAY_REDIS_WAIT_REPLICAS is ignored on a Redis Cluster" in caplog.text
            for upstream in relay.upstreams.values():
                await upstream.client.aclose()
            one = await connect.connect(Settings(redis_url=cluster.url, redis_cluster=False))
            assert not connect.is_cluster(one)
            await connect.close(one)
        finally:
            await connect.close(redis)
    finally:
        cluster.stop()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0",
                                 "unix:///run/redis.sock"])
def test_commands_are_packed_in_c_into_the_same_bytes(url: str) -> None:
    """store/packing.py: the relay's connections pack with hiredis what redis-py packs in
    Python, byte for byte (the command name split as redis-py splits it, every argument type)."""
    client = connect.build_client(url, cluster=False)
    packing = client.connection_pool.connection_class
    python = packing.__mro__[2]  # redis-py's own class (plain, TLS or Unix socket)
    assert packing.__name__ == python.__name__ and packing is not python
    conn, reference = packing(), python()
    for args in [("SET", "k", "välue"), ("CONFIG GET", "maxmemory"), (b"XADD", b"s", "*", 1, 2.5),
                 ("EVALSHA", "a" * 40, 2, "{x}a", "{x}b", b"\x00\xff" * 5000, memoryview(b"mv"))]:
        assert b"".join(conn.pack_command(*args)) == b"".join(reference.pack_command(*args))
    with pytest.raises(DataError):
        conn.pack_command("SET", "k", None)


async def test_a_client_packing_in_c_talks_to_redis(redis_server: EmbeddedRedis) -> None:
    client = connect.build_client(redis_server.url, cluster=False)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("packed:k", "välue").xadd("packed:s", {"e": b"\x00" * 10_000}).get("packed:k")
            found = await pipe.execute()
        assert found[0] is True and found[2] == "välue".encode()
    finally:
        await client.delete("packed:k", "packed:s")
        await client.aclose()
