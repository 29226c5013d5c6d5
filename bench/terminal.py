"""7. Terminal: a keystroke's echo through the relay's WebSocket, against opencode's own.

One real `opencode serve`, one relay in front of it (auth off: this machine only). Each side
gets a shell of its own (`POST /api/sessions/{id}/terminal` through the relay, `POST /pty`
directly); a keystroke is one text frame, and its echo is the next text frame the shell sends
back (readline echoes each typed character). Keystrokes alternate between the two paths, one
by one and in turn order (A B, then B A: the first of a pair pays the machine's wake-up), so
both see the same machine load; the lines are cleared (Ctrl-U) every 20 keystrokes,
and the first few keystrokes of each path (warm-up) are not counted.

opencode's own echo varies a lot (a few ms to tens of ms on a loaded 2-core machine): the
figure to read is the added p99 together with the direct p99 it is the difference to.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from websockets.asyncio.client import ClientConnection, connect

from .harness import Bench, percentile

KEYSTROKES = {"tiny": 60, "small": 400, "full": 2000}
LINE = 20  # keystrokes before the lines are cleared
WARMUP = 5
TARGET_MS = 5.0


async def _settle(ws: ClientConnection, quiet: float = 0.3) -> None:
    """Reads until the shell has been quiet for `quiet` seconds (prompt, redraws)."""
    while True:
        try:
            await _recv(ws, quiet)
        except TimeoutError:
            return


async def _recv(ws: ClientConnection, timeout: float) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def _echo_ms(ws: ClientConnection, key: str) -> float:
    """Milliseconds from sending one keystroke to the shell's next text frame."""
    started = time.perf_counter()
    await ws.send(key)
    while True:
        message = await _recv(ws, 10)
        if isinstance(message, str):  # binary frames are opencode's control frames
            return (time.perf_counter() - started) * 1000


async def _measure(paths: list[ClientConnection], total: int) -> list[list[float]]:
    """Echo times of each path, keystrokes alternating between them."""
    times: list[list[float]] = [[] for _ in paths]
    for index in range(WARMUP + total):
        key = "abcdefghij"[index % 10]
        order = list(zip(paths, times, strict=True))
        for ws, into in order if index % 2 == 0 else reversed(order):
            elapsed = await _echo_ms(ws, key)
            if index >= WARMUP:
                into.append(elapsed)
        if index % LINE == LINE - 1:
            for ws in paths:
                await ws.send("\x15")  # Ctrl-U: clear the line
                await _settle(ws, 0.1)
    return times


async def run(bench: Bench) -> None:
    total = KEYSTROKES[bench.size.name]
    print(f"terminal: keystroke echo, {total} keystrokes per path", flush=True)
    _provider, opencode = bench.opencode
    relay = bench.relay(opencode.url, "terminal")
    directory = str(opencode.directory)
    async with httpx.AsyncClient(base_url=relay.url, timeout=60) as api, \
            httpx.AsyncClient(base_url=opencode.url, timeout=60) as oc:
        created = await api.post("/api/sessions", json={"title": "bench terminal",
                                                        "directory": directory})
        created.raise_for_status()
        through = (await api.post(f"/api/sessions/{created.json()['id']}/terminal")).json()
        direct = (await oc.post("/pty", params={"directory": directory},
                                json={"cwd": directory})).json()
        relay_ws = await connect(f"ws://127.0.0.1:{relay.port}/api/terminals/{through['id']}"
                                 "/connect?cursor=-1", compression=None)
        direct_ws = await connect(f"{opencode.url.replace('http', 'ws', 1)}/pty/{direct['id']}"
                                  f"/connect?cursor=-1&directory={directory}", compression=None)
        try:
            for ws in (relay_ws, direct_ws):
                await ws.send("PS1='$ '\r")  # a short prompt: fewer redraw frames
                await _settle(ws)
            via_relay, via_direct = await _measure([relay_ws, direct_ws], total)
        finally:
            await relay_ws.close()
            await direct_ws.close()
            await api.delete(f"/api/terminals/{through['id']}")
            await oc.delete(f"/pty/{direct['id']}", params={"directory": directory})
    p50, p99 = percentile(via_relay, 50), percentile(via_relay, 99)
    d50, d99 = percentile(via_direct, 50), percentile(via_direct, 99)
    bench.add("terminal.echo_p50_ms", f"relay: keystroke to its echo, p50 of {total}", p50,
              "ms", d50, "a WebSocket straight to opencode's PTY, same run, same machine")
    bench.add("terminal.echo_p99_ms", f"relay: keystroke to its echo, p99 of {total}", p99,
              "ms", d99, "a WebSocket straight to opencode's PTY, same run, same machine")
    load = os.getloadavg()[0]
    bench.add("terminal.added_p99_ms", "what the relay adds to the echo's p99", p99 - d99, "ms",
              d99, "the direct p99 itself", target=f"≤ {TARGET_MS:g} ms",
              met=lambda added, _base: added <= TARGET_MS,
              note=f"load average {load:.1f} on {os.cpu_count()} cores when measured: the "
                   "relay is one more process to wake per keystroke and per echo, which a "
                   "loaded machine shows in the tail")
