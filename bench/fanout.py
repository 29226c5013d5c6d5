"""2. Fan-out latency: from an event leaving opencode to its arrival at the relay's SSE clients.

The synthetic upstream stamps every event with `time.monotonic_ns()` as it writes it; a swarm
of raw-socket clients in another process (bench/clients.py) notes when each event arrives.
Baseline: the same swarm reading the upstream's own `/global/event` directly. 1% of the clients
(at least one from 100 up) never read, to show whether a slow client delays the others.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from .harness import ROOT, Bench, percentile, rss_bytes


class Swarm:
    def __init__(self, url: str, clients: int, stalled: int, expect: int,
                 frames_with: tuple[str, ...] = (), baseline: str | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.clients", url, "--clients", str(clients),
             "--stalled", str(stalled), "--expect", str(expect),
             *(arg for text in frames_with for arg in ("--frames-with", text)),
             *(("--baseline", baseline) if baseline else ())],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def connected(self) -> None:
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        if line.strip() != "connected":
            raise RuntimeError(f"client swarm failed: {line!r}")

    async def results(self, patience: float) -> dict[str, Any]:
        """The swarm's figures once every client has every event, or after `patience` s."""
        assert self.process.stdin is not None and self.process.stdout is not None
        reading = asyncio.ensure_future(asyncio.to_thread(self.process.stdout.readline))
        done, _ = await asyncio.wait([reading], timeout=patience)
        if not done:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
        line = await reading
        await asyncio.to_thread(self.process.wait, 30)
        return json.loads(line)


def rate_for(rate: float, clients: int) -> float:
    """Events/s of a run: at most 10,000 deliveries/s, so the measuring swarm keeps up."""
    return min(rate, 10_000 / clients)


async def measure(bench: Bench, url: str, clients: int, pid: int | None = None) -> dict[str, Any]:
    size = bench.size
    stalled = clients // 100
    rss_before = rss_bytes(pid) if pid else None
    swarm = Swarm(url, clients, stalled, size.paced_events)
    rate = rate_for(size.paced_rate, clients)
    try:
        await swarm.connected()
        rss_connected = rss_bytes(pid) if pid else None
        await bench.upstream.paced(size.paced_events, rate)
        found = await swarm.results(patience=30)
    finally:
        if swarm.process.poll() is None:
            swarm.process.kill()
    lat_ms = [us / 1000 for us in found["latencies_us"]]
    expected = size.paced_events * (clients - stalled)
    return {"clients": clients, "stalled": stalled, "rate": rate,
            "p50": percentile(lat_ms, 50), "p99": percentile(lat_ms, 99), "max": max(lat_ms),
            "delivered": sum(found["counts"]) / expected if expected else 0.0,
            "rss_before": rss_before, "rss_connected": rss_connected}


async def run(bench: Bench) -> None:
    size = bench.size
    old = bench.extra.pop("ingest_relay", None)
    if old is not None:
        old.stop()  # only the relay under test reads the upstream from here on
    await asyncio.to_thread(bench.upstream.wait_subscribers, 0)
    counts = size.client_counts
    print(f"fanout: {size.paced_events} events to {counts} clients, at "
          f"{[rate_for(size.paced_rate, c) for c in counts]} events/s", flush=True)
    direct = {}
    for clients in counts:
        direct[clients] = await measure(bench, f"{bench.upstream.url}/global/event", clients)
        print(f"  direct {clients}: {direct[clients]}", flush=True)
    relay = bench.relay(bench.upstream.url, "fanout")
    bench.extra["fanout_relay"] = relay
    assert relay.process is not None
    via = {}
    for clients in counts:
        via[clients] = await measure(bench, f"{relay.url}/api/events", clients,
                                     relay.process.pid)
        print(f"  relay {clients}: {via[clients]}", flush=True)
    curve = []
    for clients in counts:
        d, r = direct[clients], via[clients]
        for stat in ("p50", "p99", "max"):
            bench.add(f"fanout.c{clients}.{stat}_ms",
                      f"{clients} SSE clients of the relay ({r['rate']:g} events/s): {stat} "
                      "latency upstream -> client",
                      r[stat], "ms", d[stat], "same clients reading the upstream directly")
        bench.add(f"fanout.c{clients}.added_p99_ms", f"{clients} clients: p99 the relay adds",
                  r["p99"] - d["p99"], "ms", d["p99"], "direct p99",
                  target="< 5 ms" if clients == 100 else None,
                  # Judged only when the direct p99 shows a quiet machine: on a busy one the
                  # difference of two noisy p99s says nothing (it can even be negative).
                  met=(lambda v, b: v < 5 if b is not None and b < 5 else None)
                  if clients == 100 else None)
        bench.add(f"fanout.c{clients}.delivered", f"{clients} clients: share of events that "
                  f"reached the reading clients ({r['stalled']} stalled clients)",
                  r["delivered"], "fraction", d["delivered"], "direct",
                  target="1.0 (a slow client delays no one)" if clients >= 1000 else None,
                  met=(lambda v, _b: v >= 0.999) if clients >= 1000 else None)
        curve.append({"clients": clients, **{f"relay_{k}": r[k] for k in ("p50", "p99", "max")},
                      **{f"direct_{k}": d[k] for k in ("p50", "p99", "max")}})
    bench.extra["latency_curve"] = curve
    top = via[max(counts)]
    bench.add("memory.relay_rss_mb", f"relay process RSS with {max(counts)} SSE clients",
              top["rss_connected"] / 2**20, "MiB", top["rss_before"] / 2**20,
              "same process before the clients connected",
              note=f"{(top['rss_connected'] - top['rss_before']) / max(counts) / 1024:.1f} "
                   "KiB per client")
