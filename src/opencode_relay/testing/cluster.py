"""A throwaway Redis Cluster on loopback ports, for tests and bench/.

`redis-server --cluster-enabled yes` per node (no persistence), then `redis-cli --cluster
create` over them (`replicas` per primary), then a wait until every node reports
`cluster_state:ok` and knows every slot. Each node's bus port is its port + 10000, so ports are
picked with both free (or given: `base_port`, `base_port + 1`, …).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from ..launch.embedded import _stop, _wait_until, redis_server_binary


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_cluster_port() -> int:
    """A free port whose bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 10000 < 65536 and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(port: int, *args: str, timeout: float = 5) -> str:
    found = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                           text=True, timeout=timeout, check=False)
    return found.stdout


class ClusterNode:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ClusterNode:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file",
             str((self.data_dir / "nodes.conf").resolve()), "--cluster-node-timeout", "2000",
             "--dir", str(self.data_dir.resolve()), "--save", "", "--appendonly", "no",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_until(lambda: _cli(self.port, "PING").strip() == "PONG", "cluster node", 15)
        return self

    def role(self) -> str:
        return next((line.split(":", 1)[1].strip() for line in
                     _cli(self.port, "INFO", "replication").splitlines()
                     if line.startswith("role:")), "")

    def kill(self) -> None:
        """SIGKILL: the node is gone at once (a crash, not a shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        _stop(self.process)


class RedisClusterServer:
    def __init__(self, data_dir: Path, primaries: int = 3, replicas: int = 0,
                 base_port: int | None = None) -> None:
        self.data_dir = data_dir
        count = primaries * (1 + replicas)
        ports = ([base_port + i for i in range(count)] if base_port is not None
                 else [_free_cluster_port() for _ in range(count)])
        self.nodes = [ClusterNode(data_dir / f"node-{port}", port) for port in ports]
        self.replicas = replicas

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def url(self) -> str:
        """Any one node: clients learn the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 60) -> RedisClusterServer:
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *[f"127.0.0.1:{node.port}" for node in self.nodes],
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, check=False)
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}"
                               f"{created.stderr[-500:]}")
        _wait_until(self.ready, "redis cluster", timeout)
        return self

    def ready(self) -> bool:
        """Every node says the cluster is ok, and every replica has synced with its primary
        (a replica that never did counts its data as too old and never takes over)."""
        alive = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        return all("cluster_state:ok" in _cli(n.port, "CLUSTER", "INFO") for n in alive) and \
            all("master_link_status:up" in info or "role:master" in info
                for info in (_cli(n.port, "INFO", "replication") for n in alive))

    def primaries(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None
                and n.role() == "master"]

    def owner_of(self, key: str) -> ClusterNode:
        """The primary that serves `key` now."""
        slot = int(_cli(self.nodes[0].port, "CLUSTER", "KEYSLOT", key).strip())
        for node in self.primaries():
            if _owns(node.port, slot):
                return node
        raise RuntimeError(f"no primary serves slot {slot}")

    def wait_failover(self, killed: ClusterNode, timeout: float = 30) -> None:
        """Waits until a replica took over from `killed` and the cluster is ok again.

        Right after the kill every node still reports `cluster_state:ok` (the failure is not
        detected yet), so it also waits until no live node says `killed` serves a slot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [n for n in self.nodes if n is not killed and n.process is not None
                     and n.process.poll() is None]
            if all("cluster_state:ok" in _cli(n.port, "CLUSTER", "INFO")
                   and not _serves_slots(_cli(n.port, "CLUSTER", "NODES"), killed.port)
                   for n in alive):
                return
            time.sleep(0.2)
        raise RuntimeError("the cluster did not fail over in time")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _serves_slots(nodes: str, port: int) -> bool:
    """Whether the `CLUSTER NODES` answer `nodes` gives the node on `port` any slot."""
    for line in nodes.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[1].split("@")[0].endswith(f":{port}"):
            return len(fields) > 8
    return False


def _owns(port: int, slot: int) -> bool:
    """Whether the node on `port` serves `slot` (from its own CLUSTER NODES line)."""
    for line in _cli(port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if len(fields) > 8 and "myself" in fields[2]:
            for span in fields[8:]:
                if span.startswith("["):
                    continue  # a slot being migrated
                low, _, high = span.partition("-")
                if int(low) <= slot <= int(high or low):
                    return True
    return False
