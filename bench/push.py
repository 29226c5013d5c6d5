"""7. Web Push: from opencode asking for a permission to the notification at the push service.

Real opencode (scripted LLM) runs a bash tool call, which asks for permission (bash is "ask" in
the bench's opencode config). Timed from the tool part turning `running` (its `time.start`, set
by opencode just before it asks), in wall-clock ms:
- value: the push arriving at the loopback push service (tests/support/push_service.py: VAPID
  checked, payload decrypted), sent by a relay subscribed through its own API;
- baseline: the same `permission.asked` arriving on a bare SSE client of opencode's
  `/global/event` in the same run.
One permission at a time (N by size), each rejected through the relay so the turn ends.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.support.push_service import PushService

from .harness import Bench, percentile, wait_for

COUNTS = {"tiny": 5, "small": 20, "full": 50}


async def run(bench: Bench) -> None:
    provider, server = bench.opencode
    relay = bench.relay(server.url, "push", RELAY_PUSH_ALLOW_LOOPBACK_HTTP="true",
                        RELAY_PUSH_IDLE_SECONDS="86400")
    service = PushService().start()
    bench.stack.callback(service.stop)
    count = COUNTS[bench.size.name]
    print(f"push: {count} permission requests, push vs a bare SSE client", flush=True)
    started: dict[str, float] = {}   # tool callID -> opencode's time.start (s)
    asked: dict[str, tuple[str, float]] = {}  # request id -> (callID, bare arrival)
    ready = asyncio.Event()

    async def bare() -> None:
        async with httpx.AsyncClient(timeout=None) as raw, \
                aconnect_sse(raw, "GET", f"{server.url}/global/event") as source:
            ready.set()
            async for sse in source.aiter_sse():
                now = time.time()
                payload: dict[str, Any] = (json.loads(sse.data) if sse.data else {}).get(
                    "payload") or {}
                props = payload.get("properties") or {}
                if payload.get("type") == "permission.asked":
                    asked[props["id"]] = ((props.get("tool") or {}).get("callID", ""), now)
                elif payload.get("type") == "message.part.updated":
                    part = props.get("part") or {}
                    state = part.get("state") or {}
                    if part.get("tool") == "bash" and state.get("status") == "running":
                        started.setdefault(part["callID"], state["time"]["start"] / 1000)

    reader = asyncio.create_task(bare())
    async with httpx.AsyncClient(base_url=relay.url, timeout=120) as api:
        await asyncio.wait_for(ready.wait(), 30)
        browser = service.browser("bench")
        service.vapid_key = (await api.get("/api/push/key")).json()["publicKey"]
        (await api.post("/api/push/subscriptions", json=browser.to_json())).raise_for_status()
        for n in range(count):
            marker = provider.script(f"p{uuid.uuid4().hex[:8]}", [
                [{"tool": "bash", "args": {"command": f"echo {n}", "description": "echo"}}],
                [{"text": "Done."}]])
            sid = (await api.post("/api/sessions", json={"title": f"push {n}"})).json()["id"]
            (await api.post(f"/api/sessions/{sid}/prompt",
                            json={"text": marker})).raise_for_status()
            await asyncio.to_thread(wait_for, lambda n=n: len(service.messages(browser)) > n,
                                    60, "the push")
            request = service.messages(browser)[n]["tag"].split(":", 1)[1]
            await asyncio.to_thread(wait_for, lambda r=request: r in asked, 30,
                                    "the bare client's permission.asked")
            (await api.post(f"/api/sessions/{sid}/permissions/{request}",
                            json={"reply": "reject"})).raise_for_status()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    pushed = {d.message["tag"].split(":", 1)[1]: d.received for d in service.deliveries
              if d.message and d.message["kind"] == "permission"}
    push_ms, bare_ms = [], []
    for request, (call, bare_at) in asked.items():
        if request in pushed:
            origin = started.get(call, bare_at)  # opencode's own time, if its part was seen
            push_ms.append((pushed[request] - origin) * 1000)
            bare_ms.append((bare_at - origin) * 1000)
    note = (f"{len(push_ms)} permissions; timed from the bash part's time.start "
            f"({sum(1 for _r, (c, _t) in asked.items() if c in started)} seen); "
            f"{len(service.problems())} refused by the push service")
    for q in (50, 99):
        bench.add(f"push.permission_p{q}_ms",
                  f"permission.asked at opencode -> push at the push service, p{q}",
                  percentile(push_ms, q), "ms", percentile(bare_ms, q),
                  "the same permission.asked on a bare SSE client of opencode", note=note)
