"""/metrics moves when events flow; labels stay bounded; slow clients are counted."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opencode_relay.fanout.hub import Hub
from opencode_relay.metrics import Metrics
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventId
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration


def scrape(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


def test_metrics_move_when_events_flow(api: httpx.Client, relay: RelayProcess,
                                       scripted: ScriptedProvider, script_key: str) -> None:
    before = scrape(api)
    sid = api.post("/api/sessions", json={"title": "metrics"}).json()["id"]
    stream = EventCollector(f"{relay.url}/api/sessions/{sid}/events").start()
    try:
        wait_for(lambda: value(scrape(api), "relay_sse_clients")
                 >= value(before, "relay_sse_clients") + 1, 10, "the client gauge")
        marker = scripted.script(script_key, [[{"text": "counted words"}]])
        assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
        stream.wait_for_type("session.idle")
        after = wait_for(lambda: (lambda s: s if value(s, "relay_events_ingested_total",
                                                       type="session.idle")
                                  > value(before, "relay_events_ingested_total",
                                          type="session.idle") else None)(scrape(api)),
                         10, "session.idle to be counted")
    finally:
        stream.close()
    assert value(after, "relay_events_ingested_total", type="message.part.delta") > \
        value(before, "relay_events_ingested_total", type="message.part.delta")
    assert value(after, "relay_ingest_lag_seconds_count") > \
        value(before, "relay_ingest_lag_seconds_count")
    route = "/api/sessions/{sid}/messages"
    assert total(after, "relay_http_request_duration_seconds_count", route=route,
                 method="POST", status="200") >= 1
    assert value(after, "relay_redis_up") == 1
    assert value(after, "relay_redis_memory_bytes") > 0 and value(after, "relay_redis_keys") > 0
    assert value(after, "relay_upstream_connected", upstream="default") == 1
    assert ("relay_upstream_reconnects_total", (("upstream", "default"),)) in after
    # Raw paths never become labels: the session id appears nowhere.
    assert sid not in api.get("/metrics").text
    api.get("/api/no/such/route")
    assert total(scrape(api), "relay_http_request_duration_seconds_count",
                 route="unmatched") >= 1
    # Other tests on this relay may hold streams of their own: back to where it was. A client
    # that left is noticed at once when its socket closes, at the latest by the next frame the
    # relay writes to it (a heartbeat every RELAY_HEARTBEAT_SECONDS, 15): up to 30 s here (it
    # took over 10 s once in a loaded clean-clone run).
    wait_for(lambda: value(scrape(api), "relay_sse_clients") <= value(before, "relay_sse_clients"),
             30, "the client to leave")


async def test_slow_clients_dropped_are_counted() -> None:
    metrics = Metrics()
    hub = Hub(None, Keys("x:"), None, queue_size=2)  # type: ignore[arg-type]
    hub.on_drop = metrics.dropped.inc
    slow = hub.subscribe(None)
    for seq in range(5):
        hub.dispatch(EventId(1, seq), b"{}", [])
    assert slow.overflowed.is_set()
    text = (await metrics.render()).decode()
    assert "relay_sse_clients_dropped_total 1.0" in text


async def test_event_type_labels_are_bounded() -> None:
    metrics = Metrics()
    metrics.on_event("message.updated")
    metrics.on_event("Weird Type {with} \"quotes\"" * 10)
    text = (await metrics.render()).decode()
    assert 'relay_events_ingested_total{type="message.updated"} 1.0' in text
    assert 'relay_events_ingested_total{type="other"} 1.0' in text
    await asyncio.sleep(0)
