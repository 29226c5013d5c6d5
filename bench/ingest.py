"""1. Ingest throughput: events per second one relay process takes from opencode into Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from redis.asyncio import Redis

from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.store.connect import transaction
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog
from opencode_relay.store.state import StateStore
from opencode_relay.upstream.client import OpencodeClient

from . import synth, upstream
from .clients import DELTA_TEXT
from .harness import Bench, poll


async def bare_read(url: str, count: int, bench: Bench) -> float:
    """Seconds a client that only splits frames takes to read `count` burst events."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET /global/event HTTP/1.1\r\nhost: x\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"server.connected")
    await asyncio.to_thread(bench.upstream.wait_subscribers, 1)
    burst = asyncio.create_task(bench.upstream.burst(count))
    seen, tail = 0, b""
    while seen < count:
        chunk = tail + await reader.read(1 << 20)
        seen += chunk.count(b"\n\n")
        tail = chunk[-1:]
    done = time.time()
    writer.close()
    return done - (await burst)["start"]


async def parse_only(url: str, count: int, bench: Bench) -> float:
    """Seconds the relay's own stream reader (httpx, bulk SSE split, json) takes, nothing else."""
    client = OpencodeClient(url)
    try:
        async with client.global_events() as events:
            await asyncio.to_thread(bench.upstream.wait_subscribers, 1)
            burst = asyncio.create_task(bench.upstream.burst(count))
            seen = 0
            async for found in events:
                seen += len(found)
                if seen >= count + 1:  # + server.connected
                    break
            done = time.time()
        return done - (await burst)["start"]
    finally:
        await client.aclose()


async def relay_ingest(url: str, count: int, bench: Bench,
                       cluster: bool = False) -> tuple[float, int]:
    if cluster:
        relay = bench.relay(url, "ingest-cluster", redis_url=bench.cluster.url)
        redis = await bench.cluster_client().initialize()
    else:
        relay = bench.relay(url, "ingest")
        redis = bench.redis_client()
    await asyncio.to_thread(bench.upstream.wait_subscribers, 1)
    seconds = await burst_into(bench, redis, f"{relay.prefix}events", count)
    if not cluster:
        bench.extra["ingest_prefix"] = relay.prefix
        bench.extra["ingest_relay"] = relay  # reused by the resume and memory benchmarks
        bench.extra["ingest_relay_pid"] = relay.process.pid if relay.process else None
    await redis.aclose()
    return seconds, count


async def burst_into(bench: Bench, redis: Redis, key: str, count: int) -> float:
    """Seconds from the start of a burst of `count` events to the relay that logs into `key`
    (subscribed already) having committed them all."""
    before = [entry_id for entry_id, _fields in await redis.xrevrange(key, count=1)]
    burst = asyncio.create_task(bench.upstream.burst(count))
    end = f'"{upstream.END}"'.encode()

    async def logged() -> bool:
        # Not the log's length: the relay logs a run of deltas as one entry. The event after
        # the burst is logged once every event before it is committed.
        return any(end in fields[b"e"] and [entry_id] != before
                   for entry_id, fields in await redis.xrevrange(key, count=1))

    await poll(logged, 600, "the relay to log the burst")
    done = time.time()
    return done - (await burst)["start"]


async def apply_in_process(count: int, bench: Bench, cluster: bool = False) -> tuple[float, float]:
    """`Ingestor.apply` fed batches of 500 as `_consume` does; baseline: the log writes alone."""
    redis = await (bench.cluster_client() if cluster else bench.redis_client()).initialize()
    keys = Keys(f"bench-apply-{uuid.uuid4().hex[:6]}:")
    log = EventLog(redis, keys, 200_000, 50_000)
    ingestor = Ingestor(redis, None, StateStore(redis, keys), log)  # type: ignore[arg-type]
    events = synth.stream(count, seed=7)
    batches = [events[i:i + 500] for i in range(0, len(events), 500)]
    started = time.perf_counter()
    for batch in batches:
        await ingestor.apply(batch)
    applied = time.perf_counter() - started
    raw_keys = Keys(f"bench-rawlog-{uuid.uuid4().hex[:6]}:")
    encoded = [synth.frame(e)[6:-2] for e in events]
    started = time.perf_counter()
    for i in range(0, len(encoded), 500):
        pipe = transaction(redis, raw_keys.events)
        for data in encoded[i:i + 500]:
            pipe.xadd(raw_keys.events, {"e": data}, maxlen=200_000, approximate=True)
        await pipe.execute()
    raw = time.perf_counter() - started
    await redis.delete(raw_keys.events)
    await redis.aclose()
    return applied, raw


async def real_opencode(bench: Bench) -> dict[str, float]:
    """Real opencode streams a long answer; a bare reader and the relay consume it at once."""
    provider, server = bench.opencode
    relay = bench.relay(server.url, "real")
    redis = bench.redis_client()
    params = {"directory": str(server.directory)}
    deltas = bench.size.real_deltas
    key = f"k{uuid.uuid4().hex[:8]}"
    marker = provider.script(key, [[{"text": "token! " * (deltas * 8 // 7)}]])
    times: dict[str, float] = {}
    count = chars = 0
    async with httpx.AsyncClient(base_url=server.url, params=params, timeout=120) as oc:
        sid = (await oc.post("/session", json={"title": "ingest"})).json()["id"]
        ready = asyncio.Event()

        async def bare() -> None:
            nonlocal count, chars
            tail = b""
            async with httpx.AsyncClient(timeout=None) as raw:
                async with raw.stream("GET", f"{server.url}/global/event") as response:
                    ready.set()
                    async for chunk in response.aiter_bytes():
                        now = time.time()
                        data = tail + chunk
                        cut = data.rfind(b"\n\n") + 2  # 1: no whole frame yet
                        data, tail = (data[:cut], data[cut:]) if cut > 1 else (b"", data)
                        if sid.encode() not in data:
                            continue
                        found = data.count(b'"message.part.delta"')
                        if found and "first" not in times:
                            times["first"] = now
                        count += found
                        chars += delta_chars(data)
                        if b'"session.idle"' in data:
                            times["idle"] = now
                            return

        reader = asyncio.create_task(bare())
        await ready.wait()
        await asyncio.sleep(0.3)
        await oc.post(f"/session/{sid}/prompt_async",
                      json={"parts": [{"type": "text", "text": f"answer {marker}"}]})
        await asyncio.wait_for(reader, 300)
        stream = f"{relay.prefix}session:{{{sid}}}:events"

        position = "-"

        async def relay_idle() -> bool:
            nonlocal position
            found = await redis.xrange(stream, min=position, count=10_000)
            if found:
                position = "(" + found[-1][0].decode()
            return any(b'"session.idle"' in fields[b"e"] for _id, fields in found)

        await poll(relay_idle, 120, "the relay to log session.idle")
        relay_done = time.time()
        # The relay may log a run of deltas as one entry: its deltas are counted by their text.
        logged = sum(delta_chars(fields[b"e"]) for _id, fields in await redis.xrange(stream)
                     if b'"message.part.delta"' in fields[b"e"])
    await redis.aclose()
    # Done with opencode: a relay left subscribed would ingest (and take cores during) every
    # later section's answers, the burst latency's included.
    relay.stop()
    return {"deltas": count, "relay_deltas": count * logged / chars if chars else 0,
            "first": times["first"],
            "idle": times["idle"], "relay_idle": relay_done}


def delta_chars(data: bytes) -> int:
    """Characters of delta text (as sent) in `data`, whole frames of an event stream."""
    return sum(len(found.group(1)) for found in DELTA_TEXT.finditer(data))


async def run(bench: Bench) -> None:
    n = bench.size.ingest_events
    url = bench.upstream.url
    print(f"ingest: synthetic burst of {n} events", flush=True)
    bare_s = await bare_read(url, n, bench)
    parse_s = await parse_only(url, n, bench)
    relay_s, _ = await relay_ingest(url, n, bench)
    bench.add("ingest.synthetic_eps", "relay process: synthetic /global/event burst into Redis",
              n / relay_s, "events/s", n / bare_s, "bare client splitting frames",
              target=">= 50000 events/s", met=lambda v, _b: v >= 50_000)
    bench.add("ingest.parse_only_eps", "the relay's stream reader alone (socket, SSE split, json)",
              n / parse_s, "events/s", n / bare_s, "bare client splitting frames")
    applied, raw = await apply_in_process(min(n, 50_000), bench)
    m = min(n, 50_000)
    bench.add("ingest.apply_eps", "Ingestor.apply in-process, batches of 500 (state + log)",
              m / applied, "events/s", m / raw, "XADD of the same events only (no state)")
    if bench.size.cluster:
        print("ingest: the same into a 3-primary Redis Cluster", flush=True)
        cluster_s, _ = await relay_ingest(url, n, bench, cluster=True)
        bench.add("ingest.cluster_synthetic_eps", "relay process: synthetic burst into a "
                  "3-primary Redis Cluster", n / cluster_s, "events/s", n / relay_s,
                  "the same relay process into one Redis (ingest.synthetic_eps)")
        cluster_applied, _raw = await apply_in_process(m, bench, cluster=True)
        bench.add("ingest.cluster_apply_eps", "Ingestor.apply in-process into a 3-primary "
                  "Redis Cluster, batches of 500", m / cluster_applied, "events/s",
                  m / applied, "the same into one Redis (ingest.apply_eps)")
    print("ingest: real opencode streaming a long answer", flush=True)
    real = await real_opencode(bench)
    opencode_s = real["idle"] - real["first"]
    relay_s = real["relay_idle"] - real["first"]
    bench.add("ingest.real_opencode_eps", "relay: deltas/s ingested from real opencode",
              real["relay_deltas"] / relay_s, "events/s", real["deltas"] / opencode_s,
              "bare client reading opencode's stream at the same time",
              target="keeps up (ratio ~1)", met=lambda v, b: b is not None and v >= 0.9 * b)
    bench.add("ingest.real_opencode_lag_ms", "relay logged session.idle after the bare client "
              "read it", (real["relay_idle"] - real["idle"]) * 1000, "ms",
              opencode_s * 1000, "duration of opencode's stream",
              note=f"{real['deltas']} deltas seen by the bare client, "
                   f"the text of {real['relay_deltas']:.0f} logged by the relay")
