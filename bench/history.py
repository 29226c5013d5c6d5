"""3. History read: a session of N messages x 10 parts through the relay vs opencode's own API.

How the session gets into opencode: one real agent turn (scripted LLM: reasoning, text, a tool
call) gives real message and part rows in opencode's SQLite storage; with opencode stopped, those
rows are cloned under fresh, ordered ids until the session holds N messages (alternately user
and assistant) of 10 parts each; then opencode starts again on the same storage. A fresh relay
imports the session through opencode's REST API (its reconcile on connect), so both sides serve
the same data. Timed: the full response, read by one keep-alive client, median of several reads.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

import httpx

from . import synth
from .harness import Bench, median, wait_for

PARTS_PER_MESSAGE = 10


def seed_session(bench: Bench, messages: int) -> str:
    """A session of `messages` x 10 parts in opencode's storage; returns its id."""
    provider, server = bench.opencode
    key = f"h{uuid.uuid4().hex[:8]}"
    marker = provider.script(key, [
        [{"reasoning": "Look at the module first, then explain it. " * 3},
         {"text": "Reading the file to answer precisely. " * 4},
         {"tool": "read", "args": {"filePath": str(server.directory / "opencode.json")}}],
        [{"text": "The configuration names the scripted provider and its model. " * 6}]])
    params = {"directory": str(server.directory)}
    with httpx.Client(base_url=server.url, params=params, timeout=120) as oc:
        sid = oc.post("/session", json={"title": "history"}).json()["id"]
        answer = oc.post(f"/session/{sid}/message",
                         json={"parts": [{"type": "text", "text": f"explain {marker}"}]})
        answer.raise_for_status()
    server.stop()
    db = sqlite3.connect(bench.workdir / "opencode" / "home" / "data" / "opencode" / "opencode.db")
    with db:
        rows = db.execute("select id, data from message where session_id = ? order by id",
                          (sid,)).fetchall()
        infos = {json.loads(data)["role"]: data for _id, data in rows}
        parts = [data for (data,) in db.execute(
            "select p.data from part p join message m on p.message_id = m.id "
            "where p.session_id = ? and m.data like '%\"assistant\"%' order by p.id", (sid,))]
        ids = synth.Ids(seed=11)
        now = int(time.time() * 1000)
        message_rows, part_rows = [], []
        for i in range(messages - len(rows)):
            mid = ids("msg")
            info = infos["user" if i % 2 == 0 else "assistant"]
            message_rows.append((mid, sid, now + i, now + i, info))
            for j in range(PARTS_PER_MESSAGE):
                part_rows.append((ids("prt"), mid, sid, now + i, now + i, parts[j % len(parts)]))
        db.executemany("insert into message (id, session_id, time_created, time_updated, data) "
                       "values (?, ?, ?, ?, ?)", message_rows)
        db.executemany("insert into part (id, message_id, session_id, time_created, "
                       "time_updated, data) values (?, ?, ?, ?, ?, ?)", part_rows)
    db.close()
    bench.restart_opencode()
    return sid


def timed_get(client: httpx.Client, path: str, **params: Any) -> tuple[float, bytes]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    body = response.content
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, body


async def run(bench: Bench) -> None:
    messages = bench.size.history_messages
    print(f"history: {messages} messages x {PARTS_PER_MESSAGE} parts", flush=True)
    sid = await asyncio.to_thread(seed_session, bench, messages)
    _provider, server = bench.opencode
    relay = bench.relay(server.url, "history")
    directory = str(server.directory)
    with httpx.Client(base_url=server.url, timeout=120) as oc, \
            httpx.Client(base_url=relay.url, timeout=120) as api:
        # Deliberately synchronous: nothing else runs on the loop during this section, and
        # one blocking client times opencode and the relay alike.
        upstream_count = len(oc.get(f"/session/{sid}/message",  # noqa: ASYNC212
                                    params={"directory": directory}).json())
        wait_for(lambda: len(api.get(f"/api/sessions/{sid}/messages").json()["messages"])
                 == upstream_count, 120, "the relay to import the session")
        relay_times, oc_times = [], []
        relay_body = oc_body = b""
        for _ in range(7 if messages <= 300 else 5):
            elapsed, oc_body = timed_get(oc, f"/session/{sid}/message", directory=directory)
            oc_times.append(elapsed)
            elapsed, relay_body = timed_get(api, f"/api/sessions/{sid}/messages")
            relay_times.append(elapsed)
    parts = sum(len(m["parts"]) for m in json.loads(relay_body)["messages"])
    bench.extra["history"] = {"session": sid, "relay": relay, "messages": upstream_count,
                              "parts": parts}
    note = (f"{upstream_count} messages, {parts} parts; relay body {len(relay_body):,} B, "
            f"opencode body {len(oc_body):,} B")
    bench.add("history.read_ms", "relay: GET /api/sessions/{id}/messages (median)",
              median(relay_times) * 1000, "ms", median(oc_times) * 1000,
              "opencode: GET /session/{id}/message, same session", target="ratio <= 0.33 "
              "(relay >= 3x faster)", met=lambda v, b: b is not None and v * 3 <= b, note=note)
    bench.add("history.speedup", "opencode time / relay time", median(oc_times) /
              median(relay_times), "x", 1.0, "opencode", target=">= 3",
              met=lambda v, _b: v >= 3)
