"""Many SSE clients over several relay replicas: 10,000 clients on 4 processes at full size.

The replicas are relay processes on the bench's one Redis under one key prefix: exactly one holds
the ingest lease and reads the synthetic upstream, all of them fan out from the shared Redis log.
The clients of `/api/events` are spread evenly, one swarm process (bench/clients.py) per replica.
The upstream writes N paced events stamped with `monotonic_ns`; every reading client must get
each of them exactly once (the swarm counts distinct stamps and stamps seen again).

Baseline: the same swarms, same layout, reading the upstream's `/global/event` directly before
the replicas start: the floor this machine's swarms reach. 1% of the clients never read, all on
two of the standby replicas, so the third standby is a control measured at the same moment:
the p99 of the reading clients beside stalled ones against the p99 of those on a replica without.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from opencode_relay.store.keys import Keys
from tests.support.stack import RelayProcess

from .clients import open_files_limit
from .fanout import Swarm, rate_for
from .harness import Bench, cpu_seconds, percentile, rss_bytes

REPLICAS = 4  # the first one started holds the ingest lease
STALLED_ON = (1, 2)  # replicas whose 1% of stalled clients ...
CONTROL = (3,)  # ... are compared with a replica that has none; the ingesting one is on neither
#                 side (its own work would weigh on one of them)
WRITTEN = re.compile(rb'"benchW":(\d+)')  # wall-clock ns at which the upstream wrote the event


@dataclass(frozen=True)
class Group:
    """The clients of one swarm process, all on one replica (or, for the baseline, direct)."""

    url: str
    clients: int
    stalled: int


@dataclass(frozen=True)
class Found:
    latencies_ms: list[float]
    counts: list[int]  # distinct events per reading client
    repeated: int  # events a client got again

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Found:
        return cls([us / 1000 for us in raw["latencies_us"]], raw["counts"], raw["repeated"])


def layout(urls: list[str], clients: int) -> list[Group]:
    """`clients` spread evenly over the `REPLICAS` `urls`; 1% of all of them stalled, on the
    `STALLED_ON` ones."""
    per = clients // len(urls)
    stalled = clients // 100 // len(STALLED_ON)
    return [Group(url, per, stalled if i in STALLED_ON else 0) for i, url in enumerate(urls)]


@dataclass(frozen=True)
class Pass:
    found: list[Found]  # per group
    sender_cpu: float  # CPU seconds the processes writing to the clients spent on the events


async def measure(bench: Bench, groups: list[Group], events: int, rate: float,
                  senders: list[int],
                  connected: Callable[[], Awaitable[None]] | None = None) -> Pass:
    """Opens every group's swarm (one after another: the listen backlogs stay short), calls
    `connected`, sends `events` paced events, and answers what each group's reading clients
    got, and the CPU time of the `senders` (pids) meanwhile."""
    swarms: list[Swarm] = []
    try:
        for group in groups:
            swarm = Swarm(group.url, group.clients, group.stalled, events)
            swarms.append(swarm)
            await swarm.connected()
        if connected is not None:
            await connected()
        cpu_before = sum(cpu_seconds(pid) for pid in senders)
        await bench.upstream.paced(events, rate)
        found = await asyncio.gather(*(swarm.results(patience=30) for swarm in swarms))
        cpu = sum(cpu_seconds(pid) for pid in senders) - cpu_before
    finally:
        for swarm in swarms:
            if swarm.process.poll() is None:
                swarm.process.kill()
    return Pass([Found.of(raw) for raw in found], cpu)


def merged(found: list[Found]) -> Found:
    return Found([ms for f in found for ms in f.latencies_ms], [c for f in found for c in f.counts],
                 sum(f.repeated for f in found))


def delivered(found: Found, events: int) -> float:
    """Share of (reading client, event) pairs that arrived; each counted once."""
    return sum(found.counts) / (events * len(found.counts)) if found.counts else 0.0


async def scrape(relay: RelayProcess) -> dict[str, float]:
    """The replica's SSE gauges from its /metrics (no auth on the bench's relays)."""
    async with httpx.AsyncClient(timeout=30) as client:
        text = (await client.get(f"{relay.url}/metrics")).text
    wanted = ("relay_sse_clients", "relay_sse_clients_dropped_total")
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.split(" ", 1)[0] in wanted}


async def logged_delays(bench: Bench, prefix: str) -> list[float]:
    """Per paced event in the replicas' shared log: its entry id's ms (Redis's clock when the
    ingesting replica appended it) minus the upstream's wall clock when it wrote the event."""
    redis = bench.redis_client()
    try:
        entries = await redis.xrange(Keys(prefix).events)
    finally:
        await redis.aclose()
    delays = []
    for entry_id, fields in entries:
        written = WRITTEN.search(fields[b"e"])
        if written:
            delays.append(int(entry_id.split(b"-")[0]) - int(written.group(1)) / 1e6)
    return delays


async def ingest_states(relays: list[RelayProcess]) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as client:
        return [(await client.get(f"{relay.url}/api/health")).json()["opencode"]["events"]
                for relay in relays]


async def run(bench: Bench) -> None:
    size = bench.size
    clients, events = size.replica_clients, size.replica_events
    rate = rate_for(size.paced_rate, clients)
    for name in ("ingest_relay", "fanout_relay"):
        old = bench.extra.pop(name, None)
        if old is not None:
            old.stop()  # only the replicas under test read the upstream from here on
    await asyncio.to_thread(bench.upstream.wait_subscribers, 0)
    open_files_limit(clients // REPLICAS + 1000)  # the relay processes inherit it
    print(f"replicas: {clients} SSE clients over {REPLICAS} relay processes, {events} events "
          f"at {rate:g}/s", flush=True)

    direct_url = f"{bench.upstream.url}/global/event"
    assert bench.upstream.process is not None
    direct = await measure(bench, layout([direct_url] * REPLICAS, clients), events, rate,
                           [bench.upstream.process.pid])
    relays = await bench.replicas(bench.upstream.url, "replicas", REPLICAS)
    states = await ingest_states(relays)
    if sorted(states) != ["connected"] + ["standby"] * (REPLICAS - 1):
        raise RuntimeError(f"expected one ingesting replica and the rest on standby: {states}")
    pids = [relay.process.pid for relay in relays if relay.process is not None]
    rss_before = [rss_bytes(pid) for pid in pids]
    rss_connected: list[int] = []
    gauges: list[dict[str, float]] = []

    async def connected() -> None:
        rss_connected.extend(rss_bytes(pid) for pid in pids)
        gauges.extend(await asyncio.gather(*(scrape(relay) for relay in relays)))

    groups = layout([f"{relay.url}/api/events" for relay in relays], clients)
    via = await measure(bench, groups, events, rate, pids, connected)
    dropped = sum(found["relay_sse_clients_dropped_total"]
                  for found in await asyncio.gather(*(scrape(relay) for relay in relays)))
    record(bench, groups, direct, via, events, rate,
           await logged_delays(bench, relays[0].prefix))
    record_memory(bench, clients, rss_before, rss_connected,
                  [int(found["relay_sse_clients"]) for found in gauges], int(dropped))


def record(bench: Bench, groups: list[Group], direct_pass: Pass, relay_pass: Pass,
           events: int, rate: float, logged: list[float]) -> None:
    clients = sum(g.clients for g in groups)
    stalled = sum(g.stalled for g in groups)
    direct, via = direct_pass.found, relay_pass.found
    relay_all, direct_all = merged(via), merged(direct)
    what = f"{clients} SSE clients over {REPLICAS} replicas ({rate:g} events/s)"
    baseline_what = "same swarms reading the upstream directly"
    for stat, q in (("p50", 50), ("p99", 99), ("max", 100)):
        bench.add(f"replicas.{stat}_ms", f"{what}: {stat} latency upstream -> client",
                  percentile(relay_all.latencies_ms, q), "ms",
                  percentile(direct_all.latencies_ms, q), baseline_what,
                  note=f"of which upstream -> in the shared log (the ingesting replica, ms "
                       f"clock; {len(logged)} events): {percentile(logged, q):.0f} ms")
    repeated = relay_all.repeated
    bench.add("replicas.delivered", f"{what}: share of the {events} events each of the "
              f"{clients - stalled} reading clients got ({stalled} stalled clients)",
              delivered(relay_all, events), "fraction", delivered(direct_all, events),
              "direct", target="1.0, no event twice", met=lambda v, _b: v == 1.0 and not repeated,
              note=f"{repeated} events arrived twice on a stream (direct: {direct_all.repeated})")

    frames = events * clients
    bench.add("replicas.cpu_us_per_frame", "CPU time of the relay processes (all replicas, "
              "one of them ingesting) per event frame sent to a client",
              relay_pass.sender_cpu / frames * 1e6, "us",
              direct_pass.sender_cpu / frames * 1e6,
              "the synthetic upstream's CPU per frame, writing the same events to as many "
              "direct clients (one pre-encoded frame, one socket write per client)")

    relay_p99 = [p99_of(via, side) for side in (STALLED_ON, CONTROL)]
    direct_p99 = [p99_of(direct, side) for side in (STALLED_ON, CONTROL)]
    bench.add("replicas.beside_stalled_p99_ms", "p99 of the reading clients on the standby "
              f"replicas that also hold the {stalled} stalled clients", relay_p99[0], "ms",
              relay_p99[1], "p99 of the clients on a standby replica without stalled clients, "
              "same moment",
              target="about 1x (stalled clients delay no one)",
              note=f"the same split of the direct run: {direct_p99[0]:.1f} / {direct_p99[1]:.1f}"
                   " ms")
    bench.extra["replicas"] = {
        "per_replica": [summary(f, events, g.stalled) for g, f in zip(groups, via, strict=True)],
        "direct_per_swarm": [summary(f, events, g.stalled)
                             for g, f in zip(groups, direct, strict=True)],
    }
    print(f"  per replica: {bench.extra['replicas']['per_replica']}", flush=True)
    print(f"  direct per swarm: {bench.extra['replicas']['direct_per_swarm']}", flush=True)


def record_memory(bench: Bench, clients: int, rss_before: list[int], rss_connected: list[int],
                  connected: list[int], dropped: int) -> None:
    mean_before = sum(rss_before) / len(rss_before)
    mean_connected = sum(rss_connected) / len(rss_connected)
    bench.add("replicas.rss_mb", f"relay RSS per replica, {clients // REPLICAS} SSE clients "
              "each (mean of the replicas)", mean_connected / 2**20, "MiB", mean_before / 2**20,
              "same processes before the clients connected",
              note=f"per replica {', '.join(f'{b / 2**20:.0f}' for b in rss_connected)} MiB; "
                   f"{(mean_connected - mean_before) * REPLICAS / clients / 1024:.1f} KiB per "
                   f"client; clients per replica {connected}; clients dropped as too slow "
                   f"{dropped}")


def p99_of(found: list[Found], replicas: tuple[int, ...]) -> float:
    return percentile(merged([found[i] for i in replicas]).latencies_ms, 99)


def summary(found: Found, events: int, stalled: int) -> dict[str, float]:
    return {"reading": len(found.counts), "stalled": stalled,
            "p50_ms": round(percentile(found.latencies_ms, 50), 1),
            "p99_ms": round(percentile(found.latencies_ms, 99), 1),
            "delivered": delivered(found, events), "repeated": found.repeated}
