"""A swarm of SSE clients in its own process: raw asyncio sockets, no HTTP library in the way.

`python -m bench.clients URL --clients N [--stalled S]` opens N streams (S of them never read
after sending their request: slow clients), prints `connected` once every reading stream has its
first bytes, then records, for every event carrying `"benchT":<monotonic ns>`, the time it was
read (one clock read per socket read). When every reading client has `--expect` events, or a
line arrives on stdin, it prints one JSON line: the latencies in microseconds, per-client counts
of distinct events, and how many events arrived again (the same stamp twice on one stream).

With `--frames-with TEXT` (repeatable) a client records instead the arrival time
(`time.monotonic_ns()`, one clock read per socket read) of every frame that holds all the TEXTs,
and the length of the frame's `"delta"` string (as sent, escapes and all; 0 if it has none);
`--expect` then counts those characters. The JSON line carries `arrivals_ns` and `sizes`, one
list per reading client: the burst benchmark lines up each character of one answer on the
relay's streams and on opencode's own (`--baseline URL`: one client of opencode, in the same
process), since the relay may send a run of deltas as one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sys
import time
from urllib.parse import urlsplit

STAMP = re.compile(rb'"benchT":(\d+)')
DELTA_TEXT = re.compile(rb'"delta": ?"((?:[^"\\]|\\.)*)"')


class Client:
    def __init__(self, expect: int, done: asyncio.Event, pending: list[int],
                 frames_with: list[bytes]) -> None:
        self.expect, self.done, self.pending = expect, done, pending
        self.frames_with = frames_with
        self.latencies: list[int] = []
        self.arrivals: list[int] = []
        self.sizes: list[int] = []  # of each frame's delta text
        self.stamps: set[bytes] = set()
        self.repeated = 0
        self.events = 0
        self.first = asyncio.Event()

    async def run(self, host: str, port: int, path: str, stalled: bool) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}\r\naccept: text/event-stream\r\n"
                     "\r\n".encode())
        await writer.drain()
        if stalled:
            self.first.set()
            await asyncio.sleep(3600)
        tail = b""
        try:
            while True:
                chunk = await reader.read(65536)
                now = time.monotonic_ns()
                if not chunk:
                    return
                self.first.set()
                data = tail + chunk
                cut = data.rfind(b"\n\n")
                if cut < 0:
                    tail = data
                    continue
                tail = data[cut + 2:]
                if self.frames_with:
                    # The swarm shares the cores with what it measures: one pass per read, in C
                    # where it can (20 clients of a 2,000-delta burst are 40,000 frames).
                    first, *others = self.frames_with
                    found = [one for one in data[:cut].split(b"\n\n") if first in one]
                    for text in others:
                        found = [one for one in found if text in one]
                    if found:
                        sizes = [len(text.group(1)) if (text := DELTA_TEXT.search(one)) else 0
                                 for one in found]
                        self.arrivals += [now] * len(found)
                        self.sizes += sizes
                        self._counted(sum(sizes))
                    continue
                for found in STAMP.finditer(data, 0, cut):
                    stamp = found.group(1)
                    if stamp in self.stamps:  # every event has its own stamp
                        self.repeated += 1
                        continue
                    self.stamps.add(stamp)
                    self.latencies.append((now - int(stamp)) // 1000)
                    self._counted()
        finally:
            writer.close()

    def _counted(self, count: int = 1) -> None:
        before, self.events = self.events, self.events + count
        if before < self.expect <= self.events:
            self.pending[0] -= 1
            if self.pending[0] == 0:
                self.done.set()


def open_files_limit(needed: int) -> None:
    """Raises this process's open-file limit (children inherit it) to its hard limit, which
    must leave room for `needed` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} sockets need an open-file limit above the hard {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(url: str, clients: int, stalled: int, expect: int,
               frames_with: list[bytes], baseline: str | None) -> None:
    open_files_limit(clients + 100)
    step = max(1, clients // stalled) if stalled else 0
    slow = set(list(range(0, clients, step))[:stalled]) if stalled else set()
    done = asyncio.Event()
    pending = [clients - len(slow) + (1 if baseline else 0)]
    swarm = [Client(expect, done, pending, frames_with) for _ in range(clients)]
    twins = [Client(expect, done, pending, frames_with)] if baseline else []
    tasks = []
    for i, client in enumerate(swarm):
        # Stalled clients are spread among the others.
        is_stalled = i in slow
        tasks.append((asyncio.create_task(_run(client, url, is_stalled)), is_stalled))
        if twins and i == 0:
            assert baseline is not None
            tasks.append((asyncio.create_task(_run(twins[0], baseline, False)), True))
        if i % 50 == 49:
            await asyncio.sleep(0.01)  # stay under the listen backlog
    await asyncio.wait_for(asyncio.gather(*(c.first.wait() for c in swarm + twins)), 120)
    print("connected", flush=True)
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.wait([stop, asyncio.ensure_future(done.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    latencies: list[int] = []
    counts: list[int] = []
    arrivals: list[list[int]] = []
    sizes: list[list[int]] = []
    for i, client in enumerate(swarm):
        if i not in slow:
            latencies.extend(client.latencies)
            counts.append(client.events)
            arrivals.append(client.arrivals)
            sizes.append(client.sizes)
    for task, _ in tasks:
        task.cancel()
    repeated = sum(client.repeated for i, client in enumerate(swarm) if i not in slow)
    found: dict[str, object] = {"latencies_us": latencies, "counts": counts,
                                "repeated": repeated}
    if frames_with:
        found["arrivals_ns"], found["sizes"] = arrivals, sizes
    if twins:
        found["baseline_arrivals_ns"] = [twin.arrivals for twin in twins]
        found["baseline_sizes"] = [twin.sizes for twin in twins]
    print(json.dumps(found), flush=True)
    os._exit(0)  # without waiting for the thread that may still read stdin


async def _run(client: Client, url: str, stalled: bool) -> None:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    await client.run(parts.hostname or "127.0.0.1", parts.port or 80, path, stalled)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--stalled", type=int, default=0)
    parser.add_argument("--expect", type=int, default=0,
                        help="events per client after which the swarm reports by itself (with "
                        "--frames-with: characters of delta text)")
    parser.add_argument("--frames-with", action="append", default=[],
                        help="record the arrival of frames holding this text (repeatable)")
    parser.add_argument("--baseline", help="one more client, of this URL, in this process (so "
                        "both sides meet the same scheduling); its arrivals are reported as "
                        "baseline_arrivals_ns")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.clients, args.stalled, args.expect,
                     [text.encode() for text in args.frames_with], args.baseline))
