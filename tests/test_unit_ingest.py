"""Unit tests of the ingest side against a real Redis (own server): lease, batches, handlers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest
from redis.asyncio import Redis

from opencode_relay.ingest.leader import Lease
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys


@pytest.fixture()
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture()
def keys() -> Keys:
    return Keys(f"unit-{uuid.uuid4().hex[:8]}:")


async def test_the_lease_has_one_holder_lapses_unrenewed_and_is_released(redis: Redis,
                                                                        keys: Keys) -> None:
    key = keys.ingest_leader("default")
    first, second = Lease(redis, key, ttl_seconds=0.3), Lease(redis, key, ttl_seconds=0.3)
    assert await first.acquire() and not await second.acquire()
    assert await first.acquire()  # held: asking again renews it
    await asyncio.sleep(0.2)
    assert await first.renew() and not await second.renew()
    await asyncio.sleep(0.2)  # renewed 0.2 s ago with a 0.3 s TTL: still held
    assert not await second.acquire()
    await asyncio.sleep(0.3)  # not renewed: it lapses and the other relay takes it
    assert await second.acquire()
    assert not await first.renew()  # the first relay learns it lost the lease
    await first.release()  # releasing a lost lease leaves the new holder's alone
    assert await redis.get(key) is not None
    await second.release()
    assert await redis.get(key) is None
    assert await first.acquire()
    await first.release()


async def test_releasing_the_lease_on_a_dead_redis_logs_no_error(
        caplog: pytest.LogCaptureFixture, tmp_path: Path, keys: Keys) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = Redis.from_url(server.url, socket_connect_timeout=1)
    try:
        lease = Lease(client, keys.ingest_leader("default"), ttl_seconds=5)
        assert await lease.acquire()
        server.stop()
        with caplog.at_level(logging.DEBUG, logger="opencode_relay"):
            await lease.release()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "not released" in caplog.text
    finally:
        await client.aclose()
        server.stop()
