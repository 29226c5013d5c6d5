"""opencode's event stream (`GET /global/event`), read straight off the socket, in bulk.

opencode writes every event as its own HTTP chunk, and answers stream in bursts of tens of
thousands of events a second. Through httpx each chunk costs a pass through h11 and httpcore in
Python (~50 µs, more than everything else the relay does with the event), so this reader speaks
the one request itself: an asyncio protocol whose bytes go through httptools' C parser (chunked
encoding included), then `EventFrames` splits whatever a socket read held into events at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import httptools
import orjson

from ..errors import UpstreamUnavailable

JSON = dict[str, Any]
logger = logging.getLogger("opencode_relay.upstream")

_PAUSE_AT = 64  # reads decoded but not yet taken: past this, reading pauses (TCP pushes back)


class EventFrames:
    """Splits the bytes of a Server-Sent Events stream into the `data` of its events, as many at
    a time as a read holds (the SSE format: lines end with LF, CRLF or CR; a blank line ends an
    event; `data` lines are joined with LF; comments, `id`, `event` and `retry` carry nothing
    the relay uses). The usual frame, one `data: <json>` line, is cut without a line loop."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # bytes of an event not yet ended
        self._after_cr = False  # the last read ended in CR: an LF starting the next is its pair

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\r" in chunk or self._after_cr:
            if self._after_cr and chunk.startswith(b"\n"):
                chunk = chunk[1:]
            self._after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return []
        pending = self._pending
        ends_here = b"\n\n" in chunk or (
            bool(pending) and pending[-1].endswith(b"\n") and chunk.startswith(b"\n"))
        if not ends_here:
            pending.append(chunk)  # a long event arriving in pieces is joined once, at its end
            return []
        text = b"".join(pending) + chunk if pending else chunk
        cut = text.rfind(b"\n\n")
        rest = text[cut + 2:]
        self._pending = [rest] if rest else []
        found: list[bytes] = []
        for block in text[:cut].split(b"\n\n"):
            if block.startswith(b"data: ") and b"\n" not in block:
                if len(block) > 6:
                    found.append(block[6:])
                continue
            data = _data_of(block)
            if data:
                found.append(data)
        return found


def _data_of(block: bytes) -> bytes:
    lines = []
    for line in block.split(b"\n"):
        name, _, value = line.partition(b":")
        if name == b"data":  # an empty name is a comment line
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines)


def decoded(datas: list[bytes]) -> list[JSON]:
    """The JSON of each event's data; what is not JSON is skipped with a warning."""
    try:
        return [orjson.loads(data) for data in datas]  # the common case: every one is JSON
    except orjson.JSONDecodeError:
        pass
    events = []
    for data in datas:
        try:
            events.append(orjson.loads(data))
        except orjson.JSONDecodeError:
            logger.warning("skipped an upstream event that is not JSON: %.200s", data)
    return events


class StreamAnswer:
    """The head of opencode's answer: its status, headers and (for an error) its body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.status, self.headers, self.body = status, headers, body


class _Protocol(asyncio.Protocol):
    """One `GET /global/event` connection: httptools parses, EventFrames splits."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.frames = EventFrames()
        self.head: asyncio.Future[StreamAnswer] = asyncio.get_running_loop().create_future()
        # A failure after the caller stopped waiting (open timeout) is nobody's to read.
        self.head.add_done_callback(lambda done: done.cancelled() or done.exception())
        self.ready: deque[list[bytes]] = deque()  # event data, a read's worth each
        self.ended: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._streaming = False  # the head said 200 and text/event-stream
        self._paused = False

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, unsubclassed

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(UpstreamUnavailable(f"event stream broke: not HTTP ({exc})"))
            return
        if self._body and self._streaming:
            self._flush()

    def _flush(self) -> None:
        """Splits what the body received into events, handed to the reader."""
        found = self.frames.feed(b"".join(self._body))
        self._body.clear()
        if found:
            self.ready.append(found)
            self._wake()
            if len(self.ready) >= _PAUSE_AT and self.transport and not self._paused:
                self._paused = True
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(UpstreamUnavailable("event stream broke: "
                                      f"{type(exc).__name__ if exc else 'opencode closed it'}"))

    # httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        kind = self._headers.get("content-type", "").partition(";")[0].strip()
        if status < 400 and kind == "text/event-stream":
            self._streaming = True
            self.head.set_result(StreamAnswer(status, self._headers))
        elif status < 400:
            self._end(UpstreamUnavailable(f"event stream broke: opencode answered "
                                          f"{kind or 'nothing'!r}, not an event stream"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self.head.done():  # an error answer, whole: its body says why
            self.head.set_result(StreamAnswer(self.parser.get_status_code(), self._headers,
                                              b"".join(self._body)))
            self._body.clear()
            self.ended = UpstreamUnavailable("event stream broke: opencode answered an error")
        else:
            self._flush()
            self._end(UpstreamUnavailable("event stream broke: opencode ended it"))

    # the reader's side
    def _end(self, exc: BaseException) -> None:
        if self.ended is None:
            self.ended = exc
        if not self.head.done():
            self.head.set_exception(exc)
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_read(self, timeout: float) -> list[bytes]:
        while not self.ready:
            if self.ended is not None:
                raise self.ended
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            except TimeoutError:
                raise UpstreamUnavailable(f"event stream broke: silent for {timeout:g}s") from None
            finally:
                self.waiter = None
        found = self.ready.popleft()
        if self._paused and len(self.ready) < _PAUSE_AT // 2 and self.transport:
            self._paused = False
            self.transport.resume_reading()
        return found


class EventStream:
    """An open `GET /global/event`: `head` (status, headers), then `batches()`."""

    def __init__(self, protocol: _Protocol, head: StreamAnswer, read_timeout: float) -> None:
        self._protocol, self.head, self._read_timeout = protocol, head, read_timeout

    async def batches(self) -> AsyncIterator[list[JSON]]:
        """The events, a socket read's worth at a time (none skipped but what is not JSON)."""
        while True:
            yield decoded(await self._protocol.next_read(self._read_timeout))

    def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()


async def open_event_stream(base_url: str, password: str | None, *, open_timeout: float,
                            read_timeout: float) -> EventStream:
    """Connects, sends the request and waits for the answer's head (at most `open_timeout`).

    Raises OSError or TimeoutError when opencode cannot be reached, UpstreamUnavailable when it
    answers with something that is not an event stream. An error status is not raised: the
    caller reads it from `head`."""
    url = urlsplit(base_url)
    secure = url.scheme == "https"
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if secure else 80)
    path = url.path.rstrip("/") + "/global/event"
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc.rpartition('@')[2]}",
             "Accept: text/event-stream", "Cache-Control: no-store", "Accept-Encoding: identity"]
    if password:
        token = base64.b64encode(f"opencode:{password}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    elif url.username is not None:  # credentials in the URL, as httpx uses them for REST
        user, secret = unquote(url.username), unquote(url.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()

    async def connect() -> tuple[_Protocol, StreamAnswer]:
        transport, protocol = await loop.create_connection(
            _Protocol, host, port, ssl=ssl.create_default_context() if secure else None)
        transport.write(request)
        try:
            return protocol, await protocol.head
        except BaseException:
            transport.close()
            raise

    protocol, head = await asyncio.wait_for(connect(), open_timeout)
    return EventStream(protocol, head, read_timeout)
