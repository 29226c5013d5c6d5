"""An ingest commit whose EXEC reached Redis but whose reply was lost (the connection dropped
in between) is not sent again: the ingestor reconnects and reconciles instead, and no stream
holds an event twice. (On a cluster, the default retry of redis-py's node clients applied such
a batch a second time; the relay's one-node client, built from a URL, has no retry in redis-py
8: there the test guards against one coming back.)

A proxy sits between the relay and Redis: on the cluster pass one in front of each primary,
which announces the proxy's port as its own (`cluster-announce-port`), so the relay reaches
every node through one."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis

from opencode_relay import events
from opencode_relay.ingest.routing import session_id_of
from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.cluster import RedisClusterServer
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.proxy import CuttableProxy
from tests.support.redis_under_test import CLUSTER
from tests.support.stack import EventCollector, RelayProcess, wait_for
from tests.test_gapless import (
    assert_every_durable_event_once_in_order,
    long_answer,
    tools_completed,
)

pytestmark = pytest.mark.integration


class ProxiedRedis:
    """A Redis of the test's own (one node, or a 3-primary cluster on the cluster pass) that
    the relay reaches only through proxies, one per primary."""

    def __init__(self, data_dir: Path) -> None:
        self.cluster = RedisClusterServer(data_dir / "cluster").start() if CLUSTER else None
        self.node = None if CLUSTER else EmbeddedRedis(data_dir / "redis").start()
        ports = [n.port for n in self.cluster.primaries()] if self.cluster else [self.port]
        self.proxies = {port: CuttableProxy("127.0.0.1", port).start() for port in ports}
        if self.cluster is not None:
            for port, proxy in self.proxies.items():
                with sync_redis.Redis(port=port) as node:
                    node.config_set("cluster-announce-port", proxy.port)
            wait_for(self._announced, 30, "every node to know the proxies' ports")

    @property
    def port(self) -> int:
        assert self.node is not None
        return self.node.port

    @property
    def url(self) -> str:
        """Where the relay points: the first proxy."""
        return f"redis://127.0.0.1:{next(iter(self.proxies.values())).port}"

    def proxy_of(self, key: str) -> CuttableProxy:
        """The proxy in front of the primary that holds `key`."""
        return self.proxies[self.cluster.owner_of(key).port if self.cluster else self.port]

    def _announced(self) -> bool:
        for port in self.proxies:
            with sync_redis.Redis(port=port, decode_responses=True) as node:
                nodes = node.execute_command("CLUSTER", "NODES")
            if not all(f":{proxy.port}@" in nodes for proxy in self.proxies.values()):
                return False
        return True

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        if self.cluster is not None:
            self.cluster.stop()
        if self.node is not None:
            self.node.stop()


@pytest.fixture()
def proxied(tmp_path: Path) -> Iterator[ProxiedRedis]:
    server = ProxiedRedis(tmp_path)
    yield server
    server.stop()


def doubled(payloads: list[dict[str, Any]]) -> list[str]:
    """opencode's events that a stream holds more than once: durable ones by id, text deltas
    by content (each chunk of the scripted answer is unique)."""
    keys = [p["id"] if p.get("type") in events.DURABLE else json.dumps(p, sort_keys=True)
            for p in payloads if p.get("type") in events.DURABLE
            or p.get("type") == events.PART_DELTA]
    return [key for key, count in Counter(keys).items() if count > 1]


def test_an_ingest_commit_whose_reply_is_lost_is_logged_once(
        tmp_path: Path, proxied: ProxiedRedis, opencode: EmbeddedOpencode, oc: httpx.Client,
        scripted: ScriptedProvider, script_key: str) -> None:
    relay = RelayProcess(proxied.url, opencode.url, tmp_path / "relay.log").start()
    session: EventCollector | None = None
    everything: EventCollector | None = None
    try:
        api = httpx.Client(base_url=relay.url, timeout=60)
        marker = scripted.script(script_key, long_answer(opencode.directory, script_key, 6))
        sid = api.post("/api/sessions", json={"title": "lost reply"}).json()["id"]
        session = EventCollector(f"{relay.url}/api/sessions/{sid}/events?after=0").start()
        everything = EventCollector(f"{relay.url}/api/events").start()
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        wait_for(lambda: tools_completed(session) >= 1, 60, "the answer to be under way")
        proxy = proxied.proxy_of(f"{relay.prefix}sessions:{{{sid}}}")
        proxy.lose_exec_reply(containing=sid.encode())  # the next commit of this session
        wait_for(lambda: proxy.lost_replies == 1, 30, "a commit to lose its reply")

        ids = assert_every_durable_event_once_in_order(session, oc, sid)
        assert tools_completed(session) == 6
        assert doubled(session.payloads()) == []
        # The global log: what a client of every session got, live, from before the prompt.
        ours = [p for p in everything.payloads() if session_id_of(p) == sid]
        wait_for(lambda: ids[-1] in [p.get("id") for p in everything.payloads()], 30,
                 "the global stream to catch up")
        assert doubled(ours) == []
        assert_same_as_opencode(api, oc, sid)
        # It took the reconnect: the commit failed instead of being sent again.
        assert "redis error while ingesting" in (tmp_path / "relay.log").read_text()
    finally:
        for collector in (session, everything):
            if collector is not None:
                collector.close()
        relay.stop()
