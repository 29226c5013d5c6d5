"""What every benchmark shares: the processes it starts, the sizes, and the figures it records.

Processes are the project's own test stack (tests/support/stack.py: Redis, the scripted LLM,
`opencode serve`, the relay as a subprocess) plus the synthetic upstream of bench/upstream.py.
Everything listens on 127.0.0.1 and is stopped when the run ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.store.connect import build_client
from opencode_relay.testing.cluster import RedisClusterServer
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.stack import RelayProcess, start_opencode, wait_for, workspace_env

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Size:
    name: str
    ingest_events: int          # synthetic burst into one relay
    real_deltas: int            # deltas of the long answer real opencode streams
    client_counts: tuple[int, ...]
    paced_events: int           # events per latency run
    paced_rate: float           # events per second during a latency run
    history_messages: int       # messages x 10 parts, in opencode and in the relay
    resume_events: int
    browser_messages: int
    burst_deltas: int           # deltas of the answer real opencode bursts (burst latency)
    burst_rounds: int           # answers per client count
    cluster: bool = False       # ingest also into a 3-primary Redis Cluster, side by side
    replica_clients: int = 400  # SSE clients spread over the replicas (bench/replicas.py)
    replica_events: int = 20    # paced events they all receive


SIZES = {
    "tiny": Size("tiny", 5_000, 1_000, (1, 100, 1000), 30, 50.0, 100, 2_000, 100, 500, 1),
    "small": Size("small", 30_000, 5_000, (1, 100, 1000), 100, 50.0, 300, 10_000, 500, 2_000, 1,
                  replica_clients=2_000, replica_events=40),
    "full": Size("full", 100_000, 20_000, (1, 100, 1000), 500, 50.0, 1000, 10_000, 2000, 2_000,
                  3, replica_clients=10_000, replica_events=60),
    # `small`, plus the ingest figures on a Redis Cluster against the same on one Redis.
    "cluster": Size("cluster", 30_000, 5_000, (1, 100, 1000), 100, 50.0, 300, 10_000, 500,
                    2_000, 1, cluster=True, replica_clients=2_000, replica_events=40),
}


@dataclass
class Figure:
    name: str
    what: str
    value: float | None
    unit: str
    baseline: float | None
    baseline_what: str
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Bench:
    size: Size
    workdir: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)
    _redis: EmbeddedRedis | None = None
    _cluster: RedisClusterServer | None = None
    _upstream: SyntheticUpstream | None = None
    _opencode: tuple[ScriptedProvider, EmbeddedOpencode] | None = None

    def add(self, name: str, what: str, value: float | None, unit: str,
            baseline: float | None, baseline_what: str, *, target: str | None = None,
            met: Callable[[float, float | None], bool] | None = None,
            note: str | None = None) -> Figure:
        ratio = (value / baseline) if value is not None and baseline else None
        figure = Figure(name, what, _round(value), unit, _round(baseline), baseline_what,
                        _round(ratio, 3), target,
                        met(value, baseline) if met and value is not None else None, note)

        self.figures[name] = figure
        print(f"  {name}: {figure.value} {unit} (baseline {figure.baseline}, "
              f"ratio {figure.ratio})", flush=True)
        return figure

    def skip(self, name: str, what: str, unit: str, baseline_what: str, note: str,
             target: str | None = None) -> None:
        self.figures[name] = Figure(name, what, None, unit, None, baseline_what, None, target,
                                    None, note)
        print(f"  {name}: skipped ({note})", flush=True)

    # ----- processes ---------------------------------------------------------------------
    @property
    def redis(self) -> EmbeddedRedis:
        if self._redis is None:
            self._redis = EmbeddedRedis(self.workdir / "redis").start()
            self.stack.callback(self._redis.stop)
        return self._redis

    def redis_client(self) -> Redis:
        return Redis.from_url(self.redis.url)

    @property
    def cluster(self) -> RedisClusterServer:
        """A 3-primary Redis Cluster on loopback ports (`--size cluster`)."""
        if self._cluster is None:
            self._cluster = RedisClusterServer(self.workdir / "cluster").start()
            self.stack.callback(self._cluster.stop)
        return self._cluster

    def cluster_client(self) -> Redis:
        return build_client(self.cluster.url, cluster=True)

    @property
    def upstream(self) -> SyntheticUpstream:
        if self._upstream is None:
            self._upstream = SyntheticUpstream().start()
            self.stack.callback(self._upstream.stop)
        return self._upstream

    @property
    def opencode(self) -> tuple[ScriptedProvider, EmbeddedOpencode]:
        if self._opencode is None:
            provider = ScriptedProvider().start()
            self.stack.callback(provider.stop)
            server = start_opencode(self.workdir / "opencode", provider)
            self.stack.callback(server.stop)
            self._opencode = (provider, server)
        return self._opencode

    def restart_opencode(self) -> EmbeddedOpencode:
        """Stops and starts the same opencode (same data, same port)."""
        provider, server = self.opencode
        server.stop()
        fresh = start_opencode(self.workdir / "opencode", provider, port=server.port)
        self.stack.callback(fresh.stop)
        self._opencode = (provider, fresh)
        return fresh

    def relay(self, upstream_url: str, name: str, redis_url: str | None = None,
              **env: str) -> RelayProcess:
        """A relay process with its own key prefix, synced with its upstream."""
        process = RelayProcess(redis_url or self.redis.url, upstream_url,
                               self.workdir / f"relay-{name}.log",
                               prefix=f"bench-{name}-{uuid.uuid4().hex[:6]}:",
                               extra_env=self._relay_env(env))
        process.start(wait_synced=True)
        self.stack.callback(process.stop)
        return process

    async def replicas(self, upstream_url: str, name: str, count: int) -> list[RelayProcess]:
        """`count` relay processes on the bench's Redis under one key prefix, as replicas of
        one deployment: the first takes the ingest lease (it is up and synced before the others
        start), the others serve from the shared log on standby."""
        leader = await asyncio.to_thread(self.relay, upstream_url, f"{name}-0")
        standbys = [RelayProcess(self.redis.url, upstream_url,
                                 self.workdir / f"relay-{name}-{i}.log", prefix=leader.prefix,
                                 extra_env=self._relay_env({}))
                    for i in range(1, count)]
        for process in standbys:
            self.stack.callback(process.stop)
        await asyncio.gather(*(asyncio.to_thread(process.start, wait_synced=False)
                               for process in standbys))
        return [leader, *standbys]

    def _relay_env(self, env: dict[str, str]) -> dict[str, str]:
        return {"RELAY_DATA_DIR": str(self.workdir / "var"),
                **workspace_env(self.workdir / "opencode" / "project"), **env}

    def close(self) -> None:
        self.stack.close()


class SyntheticUpstream:
    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SyntheticUpstream:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.upstream"], cwd=ROOT,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"synthetic upstream did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def subscribers(self) -> int:
        return httpx.get(f"{self.url}/bench/subscribers", timeout=5).json()["subscribers"]

    def wait_subscribers(self, count: int, timeout: float = 60) -> None:
        wait_for(lambda: self.subscribers() == count, timeout, f"{count} upstream subscribers")

    async def burst(self, count: int) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=600) as client:
            return (await client.post(f"{self.url}/bench/burst", params={"n": count})).json()

    async def paced(self, count: int, rate: float, hold: float = 0.5) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=600) as client:
            return (await client.post(f"{self.url}/bench/paced",
                                      params={"n": count, "rate": rate, "hold": hold})).json()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far, all its threads: nanoseconds from the scheduler
    (`/proc/<pid>/task/*/schedstat`), else clock ticks (10 ms) from `/proc/<pid>/stat`."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        return tick_cpu_seconds(pid)


def tick_cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far, in clock ticks (10 ms) from `/proc/<pid>/stat`:
    one read, the kernel sums the threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """Samples the CPU time of some processes every few milliseconds, in a thread, so that
    what each used in a window of CLOCK_MONOTONIC (the clock the swarms stamp with) can be
    told afterwards. Clock ticks from `/proc/<pid>/stat` (one read per process: a process's
    threads are summed by the kernel), so a figure is good to about 10 ms of CPU."""

    def __init__(self, pids: list[int], every: float = 0.005) -> None:
        self.pids, self.every = pids, every
        self.samples: list[tuple[int, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            used = []
            for pid in self.pids:
                try:
                    used.append(tick_cpu_seconds(pid))
                except (OSError, IndexError, ValueError):
                    used.append(0.0)
            self.samples.append((time.monotonic_ns(), used))

    def used(self, index: int, start_ns: int, end_ns: int) -> tuple[float, float]:
        """CPU seconds the `index`-th process used from the last sample at or before
        `start_ns` to the first at or after `end_ns`, and that span in seconds."""
        before = [s for s in self.samples if s[0] <= start_ns] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end_ns] or self.samples[-1:]
        if not before or not after:
            return 0.0, 0.0
        return (after[0][1][index] - before[-1][1][index],
                (after[0][0] - before[-1][0]) / 1e9)


async def quiet(pids: list[int], window: float = 0.5, busy: float = 0.05,
                timeout: float = 20.0) -> float:
    """Waits until the processes together used at most `busy` of a core over the last `window`
    seconds (or `timeout` passed); answers the seconds it waited. CPU ticks of 10 ms."""
    started = time.monotonic()
    last = sum(tick_cpu_seconds(pid) for pid in pids)
    while time.monotonic() - started < timeout:
        await asyncio.sleep(window)
        now = sum(tick_cpu_seconds(pid) for pid in pids)
        if now - last <= busy * window:
            break
        last = now
    return time.monotonic() - started


async def poll(check: Callable[[], Any], timeout: float, what: str, every: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None:
        return None
    if value == 0 or abs(value) >= 100:
        return round(value, 1)
    return float(f"{value:.{digits}g}")


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
