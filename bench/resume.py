"""4. Resume: replaying missed events to a client that reconnects with Last-Event-ID."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from opencode_relay.store.log import EventId

from .harness import Bench, median
from .ingest import burst_into, relay_ingest


async def replay_seconds(url: str, after: str, count: int) -> float:
    """Seconds from sending the request to holding the `count`-th replayed event."""
    host, port = url.rsplit("/", 1)[1].split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /api/events HTTP/1.1\r\nhost: {host}\r\naccept: text/event-stream\r\n"
                 f"last-event-id: {after}\r\n\r\n".encode())
    await writer.drain()
    seen, tail = 0, b""
    while seen < count:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 60)
        if not chunk:
            raise RuntimeError(f"stream ended after {seen} of {count} replayed events")
        data = tail + chunk
        seen += data.count(b"\nid: ") + data.startswith(b"id: ")
        tail = data[-5:]
        seen -= tail.count(b"\nid: ")
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def xrange_seconds(redis: Redis, key: str, after: str, count: int) -> float:
    """The floor: a bare client reading the same entries from Redis, 1000 at a time."""
    started = time.perf_counter()
    cursor, seen = f"({after}", 0
    while seen < count:
        found = await redis.xrange(key, min=cursor, max="+", count=1000)
        seen += len(found)
        cursor = "(" + found[-1][0].decode()
    return time.perf_counter() - started


async def run(bench: Bench) -> None:
    count = bench.size.resume_events
    print(f"resume: replay of {count} missed events", flush=True)
    relay = bench.extra.get("ingest_relay")
    if relay is None:
        await relay_ingest(bench.upstream.url, count + 100, bench)
        relay = bench.extra["ingest_relay"]
    redis = bench.redis_client()
    key = f"{relay.prefix}events"
    newest = await redis.xrevrange(key, count=count + 1)
    while len(newest) < count + 1:  # a run of deltas is one entry: the log has fewer than sent
        await burst_into(bench, redis, key, count)
        newest = await redis.xrevrange(key, count=count + 1)
    after = newest[-1][0].decode()
    EventId.parse(after)
    relay_times, bare_times = [], []
    for _ in range(3):
        bare_times.append(await xrange_seconds(redis, key, after, count))
        relay_times.append(await replay_seconds(relay.url, after, count))
    await redis.aclose()
    bench.add("resume.replay_ms", f"relay: reconnect with Last-Event-ID, {count} missed events "
              "replayed (median of 3)", median(relay_times) * 1000, "ms",
              median(bare_times) * 1000, "bare XRANGE of the same entries from Redis")
    bench.add("resume.replay_eps", "relay: replay rate", count / median(relay_times), "events/s",
              count / median(bare_times), "bare XRANGE rate")
