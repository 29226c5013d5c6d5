"""Prometheus metrics: one registry per app. `Metrics` is the relay's observer (relay.Observer):
the parts call it as things happen; live figures are read from the parts at scrape time.

Labels are bounded: event types are checked against a pattern, routes are templates.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from .store.log import EventId

if TYPE_CHECKING:
    from .relay import Relay

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("relay_events_ingested", "Events from opencode written to Redis",
                              ["type"], registry=r)
        self.lag = Histogram("relay_ingest_lag_seconds",
                             "From an event being logged to this replica fanning it out "
                             "(the oldest event of each read of the log)",
                             buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
                             registry=r)
        self.dropped = Counter("relay_sse_clients_dropped",
                               "SSE clients disconnected for being too slow", registry=r)
        self.requests = Histogram("relay_http_request_duration_seconds",
                                  "HTTP request latency (SSE: the whole stream)",
                                  ["method", "route", "status"], buckets=_LATENCY_BUCKETS,
                                  registry=r)
        self.rate_limited = Counter("relay_rate_limited", "Requests refused by a rate limit",
                                    ["limit"], registry=r)
        self.pruned = Counter("relay_sessions_pruned", "Idle sessions removed from Redis",
                              registry=r)
        self._relay: Relay | None = None
        self._redis: dict[str, float] = {}
        r.register(_Live(self))

    def track(self, relay: Relay) -> None:
        """Figures read at scrape time (connections, clients, Redis) come from this relay."""
        self._relay = relay

    def on_drop(self) -> None:
        self.dropped.inc()

    def on_pruned(self, count: int) -> None:
        self.pruned.inc(count)

    def on_rate_limited(self, which: str) -> None:
        self.rate_limited.labels(which).inc()

    def on_event(self, kind: str, count: int = 1) -> None:
        self.events.labels(kind if _EVENT_TYPE.match(kind) else "other").inc(count)

    def on_dispatch(self, event_id: EventId) -> None:
        self.lag.observe(max(0.0, time.time() - event_id.ms / 1000))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    async def render(self) -> bytes:
        """Reads Redis' figures (async), then renders everything."""
        if self._relay is not None:
            try:
                memory = await self._relay.redis.info("memory")
                self._redis = {"memory": float(memory.get("used_memory", 0)),
                               "keys": float(await self._relay.redis.dbsize()), "up": 1.0}
            except (RedisError, OSError):
                self._redis = {"up": 0.0}
        return generate_latest(self.registry)


class _Live:
    """Values read from the parts at scrape time rather than counted as they happen."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        relay = self.metrics._relay
        if relay is None:
            return
        reconnects = CounterMetricFamily("relay_upstream_reconnects",
                                         "Times opencode's event stream had to be reopened",
                                         labels=["upstream"])
        connected = GaugeMetricFamily("relay_upstream_connected",
                                      "1 while this replica reads opencode's event stream",
                                      labels=["upstream"])
        replayed = CounterMetricFamily("relay_events_replayed",
                                       "Durable events replayed from opencode's history after "
                                       "a takeover or reconnect (the stream had missed them)",
                                       labels=["upstream"])
        for name, upstream in relay.upstreams.items():
            reconnects.add_metric([name], upstream.ingestor.reconnects)
            connected.add_metric([name], 1.0 if upstream.ingestor.connected.is_set() else 0.0)
            replayed.add_metric([name], upstream.ingestor.replayed)
        yield reconnects
        yield connected
        yield replayed
        yield GaugeMetricFamily("relay_sse_clients", "SSE clients connected to this replica",
                                value=relay.hub.client_count)
        if relay.push is not None:
            pushes = CounterMetricFamily("relay_push_notifications",
                                         "Web Push notifications by outcome (sent by this "
                                         "replica; dropped = its queue was full; "
                                         "retried = sent again after a 429/5xx/timeout; "
                                         "gave_up = still failing after the last retry)",
                                         labels=["outcome"])
            counts = relay.push.notifier.counts
            for outcome in ("queued", "dropped", "sent", "failed", "expired", "retried",
                            "gave_up"):
                pushes.add_metric([outcome], getattr(counts, outcome))
            yield pushes
        redis = self.metrics._redis
        yield GaugeMetricFamily("relay_redis_up", "1 when Redis answered the last scrape",
                                value=redis.get("up", 0.0))
        if "memory" in redis:
            yield GaugeMetricFamily("relay_redis_memory_bytes", "Redis used_memory",
                                    value=redis["memory"])
            yield GaugeMetricFamily("relay_redis_keys", "Keys in the relay's Redis database",
                                    value=redis["keys"])
