"""5. Memory: Redis bytes per stored part and per logged event, against their JSON size.

(The relay's RSS with many SSE clients is measured by the fan-out benchmark, which has them.)
"""

from __future__ import annotations

from redis.asyncio import Redis

from .harness import Bench


async def usage(redis: Redis, keys: list[bytes]) -> int:
    total = 0
    for start in range(0, len(keys), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[start:start + 1000]:
                pipe.memory_usage(key, samples=0)
            total += sum(v or 0 for v in await pipe.execute())
    return total


async def scan(redis: Redis, pattern: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=pattern, count=5000)]


async def run(bench: Bench) -> None:
    print("memory: Redis bytes per part and per event", flush=True)
    redis = bench.redis_client()
    history = bench.extra.get("history")
    if history:
        prefix, sid = history["relay"].prefix, history["session"]
        part_keys = await scan(redis, f"{prefix}parts:{{{sid}}}:*")
        index_keys = await scan(redis, f"{prefix}messages:{{{sid}}}:*:parts")
        async with redis.pipeline(transaction=False) as pipe:
            for key in part_keys:
                pipe.strlen(key)
            json_bytes = sum(await pipe.execute())
        stored = await usage(redis, part_keys) + await usage(redis, index_keys)
        n = len(part_keys)
        bench.add("memory.part_bytes", f"Redis bytes per stored part (key + its place in the "
                  f"message's part index; {n} parts)", stored / n, "B/part", json_bytes / n,
                  "JSON size of the part")
    else:
        bench.skip("memory.part_bytes", "Redis bytes per stored part", "B/part",
                   "JSON size of the part", "needs the history benchmark")
    prefix = bench.extra.get("ingest_prefix")
    if prefix:
        events = f"{prefix}events".encode()
        count = await redis.xlen(events)
        sample = await redis.xrange(events, count=5000)
        avg_json = sum(len(f[b"e"]) for _id, f in sample) / len(sample)
        global_bytes = await usage(redis, [events])
        session_logs = await scan(redis, f"{prefix}session:*:events")
        all_bytes = global_bytes + await usage(redis, session_logs)
        bench.add("memory.event_bytes", f"Redis bytes per log entry (an event, or a run of "
                  f"deltas), global log ({count} entries)", global_bytes / count, "B/event",
                  avg_json, "JSON size of the entry's event")
        bench.add("memory.event_bytes_all_logs", "Redis bytes per log entry, global + session "
                  "logs", all_bytes / count, "B/event", avg_json, "JSON size of the entry's event")
    else:
        for name in ("memory.event_bytes", "memory.event_bytes_all_logs"):
            bench.skip(name, "Redis bytes per logged event", "B/event",
                       "JSON size of the event", "needs the ingest benchmark")
    await redis.aclose()
