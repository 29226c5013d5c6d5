"""Runs deploy/compose.yaml or compose.sentinel.yaml (each with its local override) and checks it.

What README "Scaling out" reports as run here: the 3+3 Redis Cluster forms and the three relays
and HAProxy come up; `/readyz` answers through the balancer. Then twice: clients (three, or more
until one is on the relay to crash) stream one session through the balancer, a prompt answered
by the scripted model (served on the host, at the compose network's gateway) streams, and
mid-answer one relay crashes (SIGKILL of its process; Docker's restart policy brings it back):
first a standby, then the one that ingests. Each client whose connection broke reconnects
through the balancer with `Last-Event-ID`, as a browser's EventSource does; every client must
get every event once, in order, to `session.idle`, all the same events, and the relay's
transcript must equal opencode's.

With --sentinel, deploy/compose.sentinel.yaml (with deploy/compose.sentinel.local.yaml): a
Redis primary, its replica and three Sentinels. The relays come up and ready through the
Sentinels, one ingests; then clients stream an answer through the balancer and mid-answer the
Redis primary is SIGKILLed (`docker kill`: it stays down). The Sentinels must promote the
replica and the relays find it by themselves; every client must get every event of the
session's log (read from the promoted replica) once, in order, to `session.idle`, and the
relay's transcript must equal opencode's. Then the old primary is started again and must come
back as the new primary's replica. Printed: when the Sentinels named the new primary, when a
write through the balancer, the balancer's `/readyz` and each relay's succeeded again.

Needs a Docker daemon, the images of scripts/local_base_images.sh and a compose (Debian's
`docker-compose` 1.29, or COMPOSE="docker compose"). Run as root from the repository:
`.venv/bin/python scripts/compose_check.py [--sentinel] [--keep]`. Timings are printed, never
asserted. The deployment is taken down at the end (`down -v`) unless --keep.
"""

from __future__ import annotations

import argparse
import calendar
import functools
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import redis
from httpx_sse import ServerSentEvent, connect_sse
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencode_relay.events import PART_DELTA, RELAY_SESSION_SYNCED, SESSION_IDLE  # noqa: E402
from opencode_relay.store.keys import Keys  # noqa: E402
from opencode_relay.testing.scripted_provider import ScriptedProvider  # noqa: E402
from tests.support.compare import assert_same_as_opencode  # noqa: E402
from tests.support.stack import EventCollector, wait_for  # noqa: E402

# Per mode: the compose project and its files (deploy/…), the override last.
MODES = {"cluster": ("relaycheck", ("compose.yaml", "compose.local.yaml")),
         "sentinel": ("relaysentinel", ("compose.sentinel.yaml", "compose.sentinel.local.yaml"))}
BALANCER = "http://127.0.0.1:8080"
GATEWAY = "172.28.5.1"  # deploy/compose.local.yaml's network: the host, seen from a container
MODEL_PORT = 45400
RELAYS = ("relay-1", "relay-2", "relay-3")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")  # compose.sentinel.yaml
MASTER = "relay"  # the name its Sentinels watch (`sentinel monitor relay …`)
REDIS_NODES = ("redis-primary", "redis-replica")
# One delta per step, a pause between them: an answer that streams for about ten seconds.
LONG_ANSWER: list[dict[str, Any]] = [step for i in range(120)
                                     for step in ({"text": f"w{i:03d} "}, {"sleep": 0.08})]


def compose_env(mode: str) -> dict[str, str]:
    """The variables that choose the mode's project and files, as every compose reads them."""
    project, files = MODES[mode]
    return {"COMPOSE_PROJECT_NAME": project, "COMPOSE_PATH_SEPARATOR": ":",
            "COMPOSE_FILE": ":".join(str(ROOT / "deploy" / name) for name in files)}


def compose(*args: str, env: dict[str, str], capture: bool = False) -> str:
    """Runs compose on the project and files `env` names (`compose_env`)."""
    command = [*shlex.split(os.environ.get("COMPOSE", "docker-compose")), *args]
    done = subprocess.run(command, env=env, check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return done.stdout or ""


def container_ip(service: str, env: dict[str, str]) -> str:
    container = compose("ps", "-q", service, env=env, capture=True).strip()
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
         container], check=True, capture_output=True, text=True).stdout.strip()


class ResumingStream(EventCollector):
    """A session's event stream read as a browser's EventSource reads it: when the connection
    breaks it reconnects (here: through the balancer) with `Last-Event-ID`."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(url, headers)
        self.arrived: list[float] = []  # when each of `events` came
        self.breaks: list[float] = []  # when each connection ended
        self.reconnected: list[float] = []  # when each later connection was answered 200

    def last_id(self) -> str | None:
        return next((event.id for event in reversed(self.events) if event.id), None)

    def timed(self) -> list[tuple[float, str | None, dict[str, Any]]]:
        """(when, id, payload) of each event (one being added right now may be left out)."""
        return [(when, event.id, json.loads(event.data))
                for when, event in zip(list(self.arrived), list(self.events), strict=False)]

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = dict(self.headers)
            if (last := self.last_id()) is not None:
                headers["Last-Event-ID"] = last
            try:
                with httpx.Client(timeout=httpx.Timeout(10, read=60)) as client, \
                        connect_sse(client, "GET", self.url, headers=headers) as source:
                    self._response = source.response
                    if source.response.status_code != 200:
                        raise httpx.HTTPError(f"status {source.response.status_code}")
                    self.status = 200
                    if self.breaks:
                        self.reconnected.append(time.monotonic())
                    previous_id: str | None = None
                    for sse in source.iter_sse():
                        if self._stop.is_set():
                            return
                        if not sse.data:
                            continue
                        # The last id carries over to frames without one (the relay's notices).
                        own_id = sse.id if sse.id and sse.id != previous_id else None
                        previous_id = sse.id or previous_id
                        self.arrived.append(time.monotonic())
                        self.events.append(ServerSentEvent(data=sse.data, id=own_id))
            except httpx.HTTPError:
                pass
            if not self._stop.is_set():
                self.breaks.append(time.monotonic())
                time.sleep(0.5)  # an EventSource's retry delay is a few seconds; this is shorter


def sse_clients(ip: str, token: str) -> float:
    try:
        metrics = httpx.get(f"http://{ip}:8000/metrics", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).text
    except httpx.HTTPError:
        return 0.0
    found = re.search(r"^relay_sse_clients(?:\{[^}]*\})? ([0-9.e+]+)$", metrics, re.M)
    return float(found[1]) if found else 0.0


def ingest_state(ip: str) -> str:
    try:
        state: str = httpx.get(f"http://{ip}:8000/readyz", timeout=2).json()["opencode"]["events"]
        return state
    except (httpx.HTTPError, ValueError, KeyError):
        return "down"


def deltas(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in payloads if p.get("type") == PART_DELTA]


def main_pid(service: str, env: dict[str, str]) -> int:
    """The host's pid of the container's process. SIGKILLing it is a crash: unlike `docker
    kill`, which counts as stopping the container by hand, the restart policy brings it back."""
    container = compose("ps", "-q", service, env=env, capture=True).strip()
    return int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container],
                              check=True, capture_output=True, text=True).stdout)


def probe(count: int) -> str:
    """`count` requests through the balancer, one after the other: their statuses and the
    slowest."""
    statuses: list[int] = []
    slowest = 0.0
    for _ in range(count):
        sent = time.monotonic()
        try:
            statuses.append(httpx.get(f"{BALANCER}/readyz", timeout=30).status_code)
        except httpx.HTTPError:
            statuses.append(0)
        slowest = max(slowest, time.monotonic() - sent)
    return (f"{statuses.count(200)} of {count} answered 200 (others: "
            f"{sorted(set(statuses) - {200}) or 'none'}), the slowest in {slowest:.2f} s")


def started_at(service: str, env: dict[str, str]) -> float:
    """When Docker last started the service's container (seconds since the epoch)."""
    container = compose("ps", "-q", service, env=env, capture=True).strip()
    return epoch(subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", container],
                                check=True, capture_output=True, text=True).stdout.strip())


def epoch(stamp: str) -> float:
    """Docker's UTC timestamp (2026-11-26T13:15:20.953934311Z) in seconds since the epoch."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction}")


def logged_at(service: str, marker: str, env: dict[str, str]) -> float | None:
    """When the service's log first has a line with `marker` (Docker's timestamp of it)."""
    for line in compose("logs", "--no-color", "-t", service, env=env,
                        capture=True).splitlines():
        found = re.search(r" (\d{4}-\d\d-\d\dT[\d:.]+Z) ", line)
        if found and marker in line:
            return epoch(found[1])
    return None


class ReadyWatch:
    """Polls a crashed relay's own /readyz (at its container's current address) and notes
    when it answers 200 again."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.ready: float | None = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while self.ready is None:
            address = subprocess.run(
                ["docker", "inspect", "-f",
                 "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.container],
                capture_output=True, text=True).stdout.strip()
            if address and ingest_state(address) in ("connected", "standby"):
                self.ready = time.monotonic()
            time.sleep(0.2)


def describe_difference(streams: list[ResumingStream], views: list[list[str]]) -> str:
    everything = {event_id: payload for stream in streams
                  for _, event_id, payload in stream.timed() if event_id}
    union = sorted(set().union(*views), key=lambda i: tuple(map(int, i.split("-"))))
    return "clients differ: " + "; ".join(
        f"client {number} lacks " + ", ".join(f"{i} {everything[i].get('type')}"
                                             for i in union if i not in view)
        for number, view in enumerate(views, 1))


def the_answer(stream: ResumingStream) -> list[str]:
    """The ids a client got from the answer's first delta to `session.idle` (it may have
    opened a moment after the others, and it is closed at idle, before later updates)."""
    ids = [(event_id, payload) for _, event_id, payload in stream.timed() if event_id]
    first = next(i for i, (_, payload) in enumerate(ids) if payload.get("type") == PART_DELTA)
    last = next(i for i, (_, payload) in enumerate(ids) if payload.get("type") == SESSION_IDLE)
    return [event_id for event_id, _ in ids[first:last + 1]]


class Deployment:
    """The running deployment, as the check sees it: the balancer, each relay's own address
    (the host reaches the containers' network) and opencode's."""

    def __init__(self, env: dict[str, str], provider: ScriptedProvider) -> None:
        self.env = env
        self.provider = provider
        self.token = ""
        self.api = httpx.Client(base_url=BALANCER, timeout=60)

    def ip(self, service: str) -> str:
        return container_ip(service, self.env)

    def states(self) -> dict[str, str]:
        return {relay: ingest_state(self.ip(relay)) for relay in RELAYS}

    def wait_all_ready(self) -> None:
        wait_for(lambda: all(s in ("connected", "standby") for s in self.states().values()), 90,
                 "every relay to be ready")
        wait_for(lambda: list(self.states().values()).count("connected") == 1, 30,
                 "exactly one relay to ingest")
        time.sleep(5)  # `rise 2` checks 2 s apart: the balancer has them all back in rotation

    def login(self) -> None:
        self.token = compose("exec", "-T", "relay-1", "opencode-relay", "token", "create",
                             "--name", "compose-check", "--admin", env=self.env,
                             capture=True).strip().splitlines()[-1]
        self.api.headers["Authorization"] = f"Bearer {self.token}"

    def stream_answer(self, key: str, target: str | None) -> tuple[str, list[ResumingStream]]:
        """A new session whose answer streams to clients through the balancer, 20 deltas in:
        three clients, more (up to eight) while none is on the relay `target`."""
        sid = self.api.post("/api/sessions", json={"title": key}).json()["id"]
        auth = {"Authorization": f"Bearer {self.token}"}
        ips = {relay: self.ip(relay) for relay in RELAYS}
        # A closed stream leaves a relay's count at its next heartbeat: count the new ones.
        before = {relay: sse_clients(ips[relay], self.token) for relay in RELAYS}
        streams: list[ResumingStream] = []

        def new_streams() -> dict[str, int]:
            return {r: int(sse_clients(ips[r], self.token) - before[r]) for r in RELAYS}

        # leastconn spreads them, unless earlier streams still count: more until `target` has one.
        while len(streams) < 3 or (target and new_streams()[target] == 0 and len(streams) < 8):
            streams.append(ResumingStream(f"{BALANCER}/api/sessions/{sid}/events", auth).start())
            wait_for(lambda: sum(new_streams().values()) >= len(streams), 20, "a stream to open")
        print(f"[{key}] new streams per relay {new_streams()}, ingest {self.states()}",
              flush=True)
        marker = self.provider.script(key, [LONG_ANSWER])
        assert self.api.post(f"/api/sessions/{sid}/prompt",
                             json={"text": marker}).status_code == 202
        wait_for(lambda: all(len(deltas(s.payloads())) >= 20 for s in streams), 60,
                 "the answer to be streaming")
        return sid, streams

    def answered(self, key: str, sid: str, streams: list[ResumingStream],
                 killed: float) -> None:
        """Waits for `session.idle` on every stream: every client got every event once, in
        order, the same events as the others; the relay's transcript equals opencode's."""
        for stream in streams:
            wait_for(lambda s=stream: any(p.get("type") == SESSION_IDLE for p in s.payloads()),
                     120, "session.idle on every stream")
            stream.close()
        for number, stream in enumerate(streams, 1):
            print(f"[{key}] client {number}: {self.verdict(stream, killed)}", flush=True)
        # Every client got the same events, from the answer's first delta to session.idle.
        views = [the_answer(s) for s in streams]
        assert all(view == views[0] for view in views), describe_difference(streams, views)
        opencode = httpx.Client(base_url=f"http://{self.ip('opencode')}:4096", timeout=30,
                                auth=("opencode", self.env["OPENCODE_SERVER_PASSWORD"]))
        assert "w119" in json.dumps(assert_same_as_opencode(self.api, opencode, sid))
        print(f"[{key}] the relay's transcript equals opencode's; ingest now "
              f"{self.states()}", flush=True)

    def kill_mid_answer(self, role: str, key: str) -> None:
        """Clients stream one session's answer through the balancer (three; more while none
        is on the relay in `role`, "standby" or "connected": the one that ingests); mid-answer
        that relay crashes. Every client must get every event once, in order."""
        states = self.states()
        target = next(r for r in RELAYS if states[r] == role)
        sid, streams = self.stream_answer(key, target)
        pid = main_pid(target, self.env)
        killed, killed_at = time.monotonic(), time.time()
        os.kill(pid, signal.SIGKILL)
        back = ReadyWatch(compose("ps", "-q", target, env=self.env, capture=True).strip())
        print(f"[{key}] crashed {target} (SIGKILL) mid-answer; /readyz right after: "
              f"{probe(20)}", flush=True)
        if role == "connected":
            wait_for(lambda: "connected" in self.states().values(), 60, "another ingester")
            print(f"[{key}] another relay ingests {time.monotonic() - killed:.1f} s after the "
                  f"crash", flush=True)
        self.answered(key, sid, streams, killed)
        ready = wait_for(lambda: back.ready, 90, f"{target} to be restarted")
        print(f"[{key}] {target} restarted by Docker (restart: unless-stopped): started "
              f"{started_at(target, self.env) - killed_at:.1f} s after the crash, /readyz 200 "
              f"{ready - killed:.1f} s after it", flush=True)

    @staticmethod
    def verdict(stream: ResumingStream, killed: float) -> str:
        ids = [event.id for event in stream.events if event.id]
        assert len(ids) == len(set(ids)), "an event was sent twice"
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))), "out of order"
        words = "".join(p["properties"]["delta"] for p in deltas(stream.payloads())).split()
        answer = "".join(step["text"] for step in LONG_ANSWER if "text" in step).split()
        remaining = iter(answer)
        assert all(word in remaining for word in words), words  # in order, none twice
        synced = any(p.get("type") == RELAY_SESSION_SYNCED for p in stream.payloads())
        assert words == answer or synced, words
        said = (f"{len(ids)} events, each once, in order; {len(words)} of {len(answer)} "
                f"deltas{' and relay.session.synced' if synced else ''}")
        if not stream.breaks:
            return said + "; its connection never broke"
        again = stream.reconnected[0]
        first = next(when for when, event_id, _ in stream.timed() if event_id and when >= again)
        return (said + f"; its connection broke {stream.breaks[0] - killed:.2f} s after the "
                f"crash, was answered again through the balancer after {again - killed:.2f} s "
                f"and sent its first event after {first - killed:.2f} s "
                f"({len(stream.breaks)} reconnection(s))")


class Samples:
    """`probe()` in a thread of its own, four times a second from now, for at most `limit` s
    or until `stop`: (when, what it returned) each time."""

    def __init__(self, probe: Callable[[], object], limit: float = 180) -> None:
        self.probe = probe
        self.taken: list[tuple[float, object]] = []
        self._until = time.monotonic() + limit
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._until:
            value = self.probe()  # known from when it returned
            self.taken.append((time.monotonic(), value))
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()

    def first(self, holds: Callable[[object], bool], after: float = 0.0) -> float | None:
        return next((when for when, value in list(self.taken)
                     if when >= after and holds(value)), None)

    def outage(self) -> tuple[float, float] | None:
        """When the probe first did not answer 200, and when it answered 200 again after."""
        down = self.first(lambda status: status != 200)
        back = None if down is None else self.first(lambda status: status == 200, down)
        return None if down is None or back is None else (down, back)


def status_of(url: str, method: str = "GET", **kwargs: Any) -> int:
    try:
        return httpx.request(method, url, timeout=10, **kwargs).status_code
    except httpx.HTTPError:
        return 0


class SentinelDeployment(Deployment):
    """compose.sentinel.yaml: a primary and its replica at fixed addresses (the Sentinels
    name them by address), three Sentinels watching `relay`."""

    @functools.cached_property
    def sentinels(self) -> list[str]:
        """The Sentinels' addresses (asking Docker takes a second or so each time)."""
        return [self.ip(sentinel) for sentinel in SENTINELS]

    def named_primaries(self) -> list[str]:
        """The primary's address each Sentinel gives now, "" for one that does not answer."""
        names = []
        for sentinel in self.sentinels:
            client = redis.Redis(host=sentinel, port=26379, socket_timeout=2,
                                 socket_connect_timeout=2, decode_responses=True)
            try:
                primary = client.sentinel_get_master_addr_by_name(MASTER)
                names.append(str(primary[0]) if isinstance(primary, tuple) else "")
            except (RedisError, OSError):
                names.append("")
            finally:
                client.close()
        return names

    def node(self, service: str) -> redis.Redis:
        return redis.Redis(host=self.ip(service), port=6379, password=self.env["REDIS_PASSWORD"],
                           socket_timeout=5, decode_responses=True)

    def replication(self, service: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self.node(service).info("replication")
            return info
        except (RedisError, OSError):
            return {}

    def kill_primary_mid_answer(self, key: str) -> None:
        """Clients stream an answer through the balancer; mid-answer the Redis primary is
        SIGKILLed. Timed from then: the Sentinels' new primary, the first write through the
        balancer, /readyz through it and on each relay; every client must get every logged
        event once and in order, the relay's transcript must equal opencode's."""
        old = self.named_primaries()
        assert len(set(old)) == 1 and old[0], f"the Sentinels disagree: {old}"
        nodes = {self.ip(node): node for node in REDIS_NODES}  # a stopped one has no address
        primary = nodes[old[0]]
        print(f"[{key}] the Sentinels name {primary} ({old[0]}) the primary; it has "
              f"{self.replication(primary).get('connected_slaves')} replica(s)", flush=True)
        sid, streams = self.stream_answer(key, None)
        ips = {relay: self.ip(relay) for relay in RELAYS}
        auth = {"Authorization": f"Bearer {self.token}"}
        container = compose("ps", "-q", primary, env=self.env, capture=True).strip()
        sent = time.monotonic()
        subprocess.run(["docker", "kill", container], check=True, capture_output=True)
        killed, killed_at = time.monotonic(), time.time()  # once `docker kill` has returned
        named = Samples(self.named_primaries)
        balancer = Samples(lambda: status_of(f"{BALANCER}/readyz"))
        relays = {relay: Samples(lambda ip=ip: status_of(f"http://{ip}:8000/readyz"))
                  for relay, ip in ips.items()}
        written = Samples(lambda: status_of(f"{BALANCER}/api/sessions", "POST", headers=auth,
                                            json={"title": "write after failover"}))
        print(f"[{key}] killed {primary} (docker kill: SIGKILL, and the restart policy leaves "
              f"it down) mid-answer; `docker kill` took {killed - sent:.2f} s, times below "
              f"are from its return", flush=True)
        address = wait_for(lambda: next((n for n in self.named_primaries()
                                         if n not in ("", old[0])), None), 90,
                           "the Sentinels to name another primary")
        new = nodes[address]
        wait_for(lambda: written.first(lambda status: status == 200), 90, "a write to succeed")
        written.stop()
        wait_for(lambda: all(s.outage() for s in [balancer, *relays.values()]), 90,
                 "/readyz 200 again")
        for samples in [named, balancer, *relays.values()]:
            samples.stop()

        def after(when: float | None) -> str:
            return "never" if when is None else f"{when - killed:.2f} s"

        one = named.first(lambda names: address in cast(list[str], names))
        print(f"[{key}] the Sentinels named {new} ({address}) the primary: the first after "
              f"{after(one)} (asked every 0.25 s or so), all three after "
              f"{after(named.first(lambda names: names == [address] * 3))}", flush=True)
        for marker in ("+sdown master", "+odown master", "+switch-master"):
            stamps = [logged_at(s, marker, self.env) for s in SENTINELS]
            seen = [stamp - killed_at for stamp in stamps if stamp is not None]
            print(f"[{key}] the Sentinels' logs: {marker} after "
                  f"{', '.join(f'{t:.2f}' for t in sorted(seen)) or 'never'} s", flush=True)
        print(f"[{key}] the first write through the balancer that succeeded (200) was sent "
              f"{after(written.first(lambda status: status == 200))} after the kill; "
              f"statuses before: {sorted({str(v) for _, v in written.taken if v != 200})}",
              flush=True)
        for name, samples in [("the balancer", balancer), *relays.items()]:
            _, back = samples.outage() or (killed, killed)
            print(f"[{key}] /readyz on {name}: 200 again {after(back)} after the kill "
                  f"(before: {sorted({str(v) for _, v in samples.taken if v != 200})})",
                  flush=True)
        self.answered(key, sid, streams, killed)
        self.compare_with_log(key, sid, streams, new, killed)
        self.rejoin(key, primary, new)

    def compare_with_log(self, key: str, sid: str, streams: list[ResumingStream], primary: str,
                         killed: float) -> None:
        """Each client's events, from its first to `session.idle`, are exactly the session's
        log on the promoted primary over the same ids: none missing, none twice, same data."""
        entries = cast(list[tuple[str, dict[str, str]]],
                       self.node(primary).xrange(Keys().session_events(sid)))
        log = [(entry_id, fields["e"]) for entry_id, fields in entries]
        for number, stream in enumerate(streams, 1):
            got = [(event.id, event.data) for event in stream.events if event.id]
            idle = next(i for i, (_, data) in enumerate(got)
                        if json.loads(data).get("type") == SESSION_IDLE)
            got = got[:idle + 1]
            # Stream ids compare as (ms, seq): the string order is not theirs.
            span = [entry for entry in log if _order(got[0][0]) <= _order(entry[0])
                    <= _order(got[-1][0])]
            missing = [entry_id for entry_id, _ in span if entry_id not in dict(got)]
            doubled = len(got) - len(dict(got))
            arrived = [when for when, event_id, _ in stream.timed() if when > killed]
            print(f"[{key}] client {number}: {len(got)} events to session.idle, of the "
                  f"{len(span)} logged over the same ids: {len(missing)} missing, {doubled} "
                  f"twice; its first event after the kill came "
                  f"{arrived[0] - killed if arrived else float('nan'):.2f} s after it",
                  flush=True)
            assert got == span, f"client {number} differs from the log: missing {missing}"

    def rejoin(self, key: str, old: str, new: str) -> None:
        """The killed primary started again comes back as the new primary's replica."""
        started = time.monotonic()
        compose("start", old, env=self.env)
        wait_for(lambda: self.replication(old).get("role") == "slave"
                 and self.replication(old).get("master_host") == self.ip(new)
                 and self.replication(old).get("master_link_status") == "up", 90,
                 f"{old} to replicate {new}")
        print(f"[{key}] {old} started again: a replica of {new}, in sync "
              f"{time.monotonic() - started:.1f} s after `start`; the Sentinels name "
              f"{self.named_primaries()}", flush=True)
        answer = self.api.post("/api/sessions", json={"title": "after the rejoin"})
        assert answer.status_code == 200, answer.text
        print(f"[{key}] writes still succeed; {new} has "
              f"{self.replication(new).get('connected_slaves')} replica(s)", flush=True)


def _order(entry_id: str) -> tuple[int, ...]:
    return tuple(map(int, entry_id.split("-")))


def check(mode: str, env: dict[str, str], provider: ScriptedProvider, started: float) -> None:
    wait_for(lambda: httpx.get(f"{BALANCER}/readyz", timeout=5).status_code == 200, 300,
             "/readyz through the balancer")
    print(f"/readyz 200 through the balancer {time.monotonic() - started:.1f} s after `up -d`",
          flush=True)
    deployment = (SentinelDeployment if mode == "sentinel" else Deployment)(env, provider)
    deployment.wait_all_ready()
    states = sorted(httpx.get(f"{BALANCER}/readyz").json()["opencode"]["events"]
                    for _ in range(9))
    print(f"/readyz through the balancer, 9 requests: ingest states {states}; per relay "
          f"{deployment.states()}", flush=True)
    deployment.login()
    if isinstance(deployment, SentinelDeployment):
        deployment.kill_primary_mid_answer("primary")
        return
    deployment.kill_mid_answer("standby", "standby")
    deployment.wait_all_ready()
    deployment.kill_mid_answer("connected", "ingester")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentinel", action="store_true",
                        help="compose.sentinel.yaml, its Redis primary killed mid-answer")
    parser.add_argument("--keep", action="store_true", help="leave the deployment running")
    args = parser.parse_args()
    mode = "sentinel" if args.sentinel else "cluster"
    env = dict(os.environ, **compose_env(mode), OPENCODE_SERVER_PASSWORD=secrets.token_hex(16),
               REDIS_PASSWORD=secrets.token_hex(16), RELAY_COOKIE_SECURE="false",
               SCRIPTED_MODEL_URL=f"http://{GATEWAY}:{MODEL_PORT}/v1")
    provider: ScriptedProvider | None = None
    try:
        started = time.monotonic()
        compose("up", "-d", env=env)
        print(f"`up -d` returned after {time.monotonic() - started:.1f} s", flush=True)
        # On the network's gateway, which exists now; opencode asks it only when prompted.
        provider = ScriptedProvider(port=MODEL_PORT, host=GATEWAY).start()
        check(mode, env, provider, started)
    finally:
        if not args.keep:
            compose("down", "-v", env=env)
        if provider is not None:
            provider.stop()


if __name__ == "__main__":
    main()
