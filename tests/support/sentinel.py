"""A Redis primary, a replica and three Sentinels on loopback, for failover tests.

Real `redis-server` processes: the primary and the replica without persistence
(`--save '' --appendonly no`), the replica `--replicaof` the primary, and three
`redis-server --sentinel` watching it with short timeouts, so a killed primary is replaced
within a few seconds. Passwords on both sides (the data servers and the Sentinels), as a
deployment would have them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import redis

from opencode_relay.launch.embedded import free_port, redis_server_binary
from tests.support.stack import wait_for

MASTER = "relay-primary"
PASSWORD = "data-secret"
SENTINEL_PASSWORD = "sentinel-secret"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000


class SentinelGroup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> str:
        """RELAY_REDIS_SENTINELS for this group."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def relay_env(self) -> dict[str, str]:
        return {"RELAY_REDIS_SENTINELS": self.sentinels, "RELAY_REDIS_MASTER": MASTER,
                "RELAY_REDIS_PASSWORD": PASSWORD,
                "RELAY_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD}

    def start(self) -> SentinelGroup:
        self.root.mkdir(parents=True, exist_ok=True)
        self._data_server(self.primary_port)
        self._data_server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        wait_for(lambda: self.data(self.replica_port).info("replication")
                 .get("master_link_status") == "up", 20, "the replica to sync")
        for port in self.sentinel_ports:
            config = self.root / f"sentinel-{port}.conf"
            config.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {self.root}",
                f"requirepass {SENTINEL_PASSWORD}", f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2",
                f"sentinel auth-pass {MASTER} {PASSWORD}",
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER} 1", ""]))
            self._spawn(port, [str(config), "--sentinel"])
        # Each Sentinel has found the replica and the two others.
        wait_for(lambda: all(self._sees_everyone(port) for port in self.sentinel_ports), 30,
                 "the Sentinels to find each other and the replica")
        return self

    def _data_server(self, port: int, *extra: str) -> None:
        self._spawn(port, ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(self.root),
                           "--requirepass", PASSWORD, "--masterauth", PASSWORD, *extra])

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.root / f"redis-{port}.log", "ab")
        self.servers[port] = subprocess.Popen([redis_server_binary(), *args], stdout=log,
                                              stderr=subprocess.STDOUT)
        wait_for(lambda: _listening(port), 15, f"redis on port {port}")

    def data(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, socket_timeout=5)

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=5)

    def _sees_everyone(self, port: int) -> bool:
        state = self.sentinel(port).sentinel_master(MASTER)
        return int(state["num-slaves"]) >= 1 and int(state["num-other-sentinels"]) >= 2

    def primary(self) -> int:
        """The port the Sentinels name as primary now."""
        _host, port = self.sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(
            MASTER)
        return int(port)

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, no last write to the replicas."""
        process = self.servers[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.servers.values():
            if process.poll() is None:
                process.terminate()
        for process in self.servers.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
