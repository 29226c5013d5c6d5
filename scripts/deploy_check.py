"""What README "Scaling out" reports as run here, reproducible: two checks on loopback.

`sentinel`: a primary, a replica and three Sentinels (tests/support/sentinel.py, failover after
1 s down), one relay on them; the primary is SIGKILLed three times over (a fresh group each
run) and the time until the relay's next successful write is printed.

`haproxy`: deploy/haproxy.cfg (addresses rewritten to loopback) in front of three relays on one
Redis and one opencode: readiness through the load balancer, an SSE stream through it, Redis
stopped (the balancer's JSON 503) and started again, the ingesting replica SIGKILLed.
Needs `haproxy` (Debian: apt install haproxy).

Run: `.venv/bin/python scripts/deploy_check.py sentinel|haproxy`. Timings are of this machine,
printed, never asserted.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis  # noqa: E402
from opencode_relay.testing.scripted_provider import ScriptedProvider  # noqa: E402
from tests.support.sentinel import SentinelGroup  # noqa: E402
from tests.support.stack import (  # noqa: E402
    EventCollector,
    RelayProcess,
    start_opencode,
    wait_for,
)


def sentinel(root: Path, opencode: EmbeddedOpencode, env: dict[str, str]) -> None:
    for run in range(3):
        group = SentinelGroup(root / f"redis{run}").start()
        relay = RelayProcess("", opencode.url, root / f"relay{run}.log",
                             extra_env={**group.relay_env(), **env}).start()
        try:
            api = httpx.Client(base_url=relay.url, timeout=30)
            assert api.post("/api/sessions", json={}).status_code == 200
            killed = time.monotonic()
            group.kill(group.primary_port)

            wait_for(lambda client=api: writes(client), 60, "the relay to write again")
            print(f"run {run}: the relay writes again {time.monotonic() - killed:.2f} s after "
                  f"the SIGKILL; the Sentinels name port {group.primary()} "
                  f"(the replica: {group.replica_port})", flush=True)
        finally:
            relay.stop()
            group.stop()


def writes(api: httpx.Client) -> bool:
    try:
        return api.post("/api/sessions", json={}).status_code == 200
    except httpx.HTTPError:
        return False


def haproxy(root: Path, opencode: EmbeddedOpencode, env: dict[str, str],
            provider: ScriptedProvider) -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    config = config.replace("bind :8080", "bind 127.0.0.1:45080")
    config = re.sub(r"resolvers docker\n    nameserver dns 127.0.0.11:53\n", "", config)
    config = config.replace(" resolvers docker", "")
    config = re.sub(r"server relay-(\d) relay-\d:8000",
                    lambda m: f"server relay-{m[1]} 127.0.0.1:4520{m[1]}", config)
    (root / "haproxy.cfg").write_text(config)
    redis = EmbeddedRedis(root / "redis").start()
    relays: list[RelayProcess] = []
    balancer = None
    try:
        for index in (1, 2, 3):
            relay = RelayProcess(redis.url, opencode.url, root / f"relay{index}.log",
                                 prefix="lb:", extra_env=env)
            relay.port = 45200 + index
            relays.append(relay.start(wait_synced=index == 1))
        balancer = subprocess.Popen(["haproxy", "-db", "-f", str(root / "haproxy.cfg")],
                                    stdout=open(root / "haproxy.log", "wb"),
                                    stderr=subprocess.STDOUT)
        api = httpx.Client(base_url="http://127.0.0.1:45080", timeout=30)
        wait_for(lambda: api.get("/readyz").status_code == 200, 20, "the balancer")
        states = sorted({api.get("/readyz").json()["opencode"]["events"] for _ in range(9)})
        print(f"/readyz through the balancer: 200, ingest states seen {states}")
        sid = api.post("/api/sessions", json={"title": "balanced"}).json()["id"]
        stream = EventCollector(f"http://127.0.0.1:45080/api/sessions/{sid}/events").start()
        marker = provider.script("balanced", [[{"text": "through haproxy " * 20}]])
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        stream.wait_for_type("session.idle", 60)
        print(f"SSE through the balancer: {len(stream.events)} events up to session.idle")
        stream.close()

        redis.stop()
        stopped = time.monotonic()
        wait_for(lambda: api.get("/api/sessions").json()["error"]["code"] == "no_relay_ready",
                 30, "the balancer to take every replica out")
        print(f"Redis stopped: after {time.monotonic() - stopped:.1f} s the balancer answers "
              f"{api.get('/api/sessions').text}")
        redis.start()
        started = time.monotonic()
        wait_for(lambda: api.get("/api/sessions").status_code == 200, 30, "readiness again")
        print(f"Redis started again: served after {time.monotonic() - started:.1f} s")

        wait_for(lambda: all(httpx.get(f"{r.url}/readyz").status_code == 200 for r in relays),
                 30, "every replica to be ready")
        time.sleep(5)  # `rise 2` checks 2 s apart: the balancer has them all back in rotation
        assert relays[0].process is not None
        relays[0].process.kill()  # the ingesting replica: its lease lapses, nothing releases it
        relays[0].process.wait()
        killed = time.monotonic()
        statuses = [api.get("/api/sessions").status_code for _ in range(20)]
        print(f"ingesting replica SIGKILLed: of 20 requests just after, "
              f"{statuses.count(200)} answered 200, the others {sorted(set(statuses) - {200})}")
        wait_for(lambda: any(httpx.get(f"{r.url}/readyz").json()["opencode"]["events"]
                             == "connected" for r in relays[1:]), 30, "another ingester")
        print(f"another replica ingests {time.monotonic() - killed:.1f} s after the SIGKILL")
    finally:
        if balancer is not None:
            balancer.terminate()
            balancer.wait()
        for relay in relays:
            relay.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["sentinel", "haproxy"])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix=f"deploy-{args.check}-"))
    provider = ScriptedProvider().start()
    opencode = start_opencode(root / "opencode", provider)
    env = {"RELAY_WORKSPACE_ROOTS": str(root),
           "OPENCODE_DEFAULT_DIRECTORY": str(root / "opencode" / "project")}
    try:
        if args.check == "sentinel":
            sentinel(root, opencode, env)
        else:
            haproxy(root, opencode, env, provider)
    finally:
        opencode.stop()
        provider.stop()


if __name__ == "__main__":
    main()
