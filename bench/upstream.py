"""A synthetic `opencode serve`: just enough HTTP for the relay, and an event stream on command.

Run as its own process (`python -m bench.upstream --port P`) so its work does not share an
event loop with what it measures. It answers the REST calls the relay makes at (re)connect with
"no sessions", and serves `GET /global/event` to any number of subscribers. The bench drives it:

- `POST /bench/burst?n=N` writes N pre-encoded realistic events to every subscriber as fast as
  the sockets take them, then one `bench.burst.end` event (no session: the relay logs it last,
  once it has committed the N); answers `{"start", "end"}` (wall clock, seconds) once written.
- `POST /bench/paced?n=N&rate=R` writes N deltas at R events/s, each carrying
  `properties.benchT` = `time.monotonic_ns()` at the moment it is written (CLOCK_MONOTONIC is
  one clock for every process of the machine) and `benchW` = `time.time_ns()` (for browsers),
  for latency measurements. `hold` seconds pass between the session's set-up events and the
  first delta.
- `GET /bench/subscribers` answers how many event streams are open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import parse_qs, urlsplit

from . import synth

END = "bench.burst.end"  # follows each burst's events
_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
         b"connection: close\r\n\r\n")


class Upstream:
    def __init__(self) -> None:
        self.subscribers: set[asyncio.StreamWriter] = set()
        self.seed = 1

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *headers = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                length = 0
                for header in headers:
                    name, _, value = header.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                url = urlsplit(target)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/global/event":
                    await self._subscribe(reader, writer)
                    return
                body = await self._route(method, url.path, query)
                data = json.dumps(body).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _subscribe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_HEAD + synth.frame({"payload": {"id": "evt_connected",
                                                      "type": "server.connected",
                                                      "properties": {}}}))
        await writer.drain()
        self.subscribers.add(writer)
        try:
            await reader.read()  # until the subscriber hangs up
        finally:
            self.subscribers.discard(writer)

    async def _route(self, method: str, path: str, query: dict[str, str]) -> object:
        if path == "/global/health":
            return {"healthy": True, "version": "bench"}
        if path in ("/experimental/session", "/permission", "/question"):
            return []
        if path == "/session/status":
            return {}
        if path == "/bench/subscribers":
            return {"subscribers": len(self.subscribers)}
        if path == "/bench/burst":
            return await self.burst(int(query["n"]), int(query.get("sessions", 4)))
        if path == "/bench/paced":
            return await self.paced(int(query["n"]), float(query["rate"]),
                                    float(query.get("hold", 0.5)))
        return {"error": f"{method} {path} is not part of the synthetic upstream"}

    async def burst(self, count: int, sessions: int) -> dict[str, float]:
        self.seed += 1
        frames = [synth.frame(e) for e in synth.stream(count, sessions, self.seed)]
        frames.append(synth.frame({"directory": synth.DIRECTORY, "payload": {
            "type": END, "properties": {"burst": self.seed}}}))
        chunks = [b"".join(frames[i:i + 200]) for i in range(0, len(frames), 200)]
        targets = list(self.subscribers)
        start = time.time()
        for chunk in chunks:
            for writer in targets:
                writer.write(chunk)
            for writer in targets:
                await writer.drain()
        return {"start": start, "end": time.time(), "events": count,
                "bytes": sum(len(f) for f in frames)}

    async def paced(self, count: int, rate: float, hold: float) -> dict[str, float]:
        self.seed += 1
        talk = synth.Conversation(synth.Ids(self.seed), random.Random(self.seed), "latency")
        setup = [*talk.created()]
        for event in talk.turn(text_chars=0, reasoning_chars=0):
            setup.append(event)
            props = event["payload"]["properties"]
            if props.get("part", {}).get("type") == "text" and props["part"]["text"] == "":
                part = props["part"]  # the assistant's text part, still empty: deltas go here
                break
        for event in setup:
            for writer in list(self.subscribers):
                writer.write(synth.frame(event))
        await asyncio.sleep(hold)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            event = {"directory": synth.DIRECTORY, "project": "global", "payload": {
                "id": talk.ids("evt"), "type": "message.part.delta", "properties": {
                    "sessionID": talk.sid, "messageID": part["messageID"],
                    "partID": part["id"], "field": "text", "delta": f"tok{i:05d} ",
                    "benchW": 0, "benchT": 0}}}
            head = synth.frame(event)[:-len(b'0,"benchT":0}}}\n\n')]
            stamp = b'%d,"benchT":%d' % (time.time_ns(), time.monotonic_ns())
            data = head + stamp + b"}}}\n\n"
            for writer in list(self.subscribers):
                writer.write(data)
        return {"events": count, "seconds": loop.time() - start}


async def main(port: int) -> None:
    upstream = Upstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=2048)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
