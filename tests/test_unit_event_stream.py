"""opencode's event stream read off the socket (upstream/event_stream.py): every event, in
order, however the bytes are cut; errors told apart. A loopback asyncio server plays opencode."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from opencode_relay.upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable
from opencode_relay.upstream.event_stream import (
    _PAUSE_AT,
    EventFrames,
    _Protocol,
    open_event_stream,
)

pytestmark = pytest.mark.unit

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def frame(event: dict) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


@asynccontextmanager
async def opencode(serve: Serve) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server; yields its URL and the request heads it received."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        try:
            await serve(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()


def test_frames_are_the_same_however_the_bytes_are_cut() -> None:
    stream = (b': comment\r\n\r\nid: 1\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata:{"b":2}\r\r'
              b'event: x\ndata: {"c": 3}\n\ndata: \n\nretry: 10\n\n' + b'data: {"d": "'
              + b"x" * 5000 + b'"}\n\n')
    expected = [b'{"a":\n1}', b'{"b":2}', b'{"c": 3}', b'{"d": "' + b"x" * 5000 + b'"}']
    for size in (1, 2, 3, 7, 64, 4096, len(stream)):
        frames = EventFrames()
        found: list[bytes] = []
        for i in range(0, len(stream), size):
            found += frames.feed(stream[i:i + size])
        assert found == expected, size
    # A CR ending one read and the LF starting the next are one line end, not two.
    frames = EventFrames()
    assert frames.feed(b'data: {"e": 5}\r') == []
    assert frames.feed(b'\ndata: {"f": 6}\r\n\r\n') == [b'{"e": 5}\n{"f": 6}']


async def test_events_arrive_in_order_in_batches_with_credentials() -> None:
    events = [{"payload": {"type": "message.part.delta", "n": i}} for i in range(300)]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD)
        # One chunk per event, as opencode writes them, then odd cuts through frames.
        for e in events[:100]:
            writer.write(chunk(frame(e)))
        await writer.drain()
        rest = b"".join(frame(e) for e in events[100:])
        for i in range(0, len(rest), 777):
            writer.write(chunk(rest[i:i + 777]))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(chunk(b"data: not json\n\n"))
        await writer.drain()
        await reader.read()  # until the client hangs up

    async with opencode(serve) as (url, heads):
        client = OpencodeClient(url, password="s3cret")
        got: list[dict] = []
        async with client.global_events() as batches:
            async for batch in batches:
                got += batch
                if len(got) >= len(events):
                    break
        await client.aclose()
    assert got == events
    head = heads[0].decode()
    assert head.startswith("GET /global/event HTTP/1.1\r\n")
    assert f"Authorization: Basic {base64.b64encode(b'opencode:s3cret').decode()}" in head

    async with opencode(serve) as (url, heads):
        client = OpencodeClient(url.replace("http://", "http://opencode:p%40ss@"))
        async with client.global_events() as batches:
            assert (await anext(batches))[0] == events[0]
        await client.aclose()
    assert f"Authorization: Basic {base64.b64encode(b'opencode:p@ss').decode()}" in \
        heads[0].decode()


async def test_failures_are_told_apart() -> None:
    async def refuses_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"data": {"message": "wrong password"}}'
        writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        await reader.read()

    async def not_a_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: 2\r\n\r\n{}")
        await writer.drain()
        await reader.read()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(frame({"n": 1})) + b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with opencode(refuses_auth) as (url, _):
        client = OpencodeClient(url)
        with pytest.raises(UpstreamError, match="wrong password") as failed:
            async with client.global_events():
                pass
        assert failed.value.status == 401
    async with opencode(not_a_stream) as (url, _):
        with pytest.raises(UpstreamUnavailable, match="not an event stream"):
            async with OpencodeClient(url).global_events():
                pass
    async with opencode(silent) as (url, _):
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            async with OpencodeClient(url).global_events(open_timeout=0.3):
                pass
    async with opencode(ends) as (url, _):
        async with OpencodeClient(url).global_events() as batches:
            assert await anext(batches) == [{"n": 1}]
            with pytest.raises(UpstreamUnavailable, match="event stream broke"):
                await anext(batches)
    async with opencode(silent) as (url, _):
        pass  # closed: nothing listens on that port any more
    with pytest.raises(UpstreamUnavailable, match="unreachable"):
        async with OpencodeClient(url).global_events():
            pass


async def test_a_stream_gone_silent_ends_with_an_error() -> None:
    async def heads_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD)
        await writer.drain()
        await reader.read()

    async with opencode(heads_only) as (url, _):
        stream = await open_event_stream(url, None, open_timeout=5, read_timeout=0.2)
        try:
            with pytest.raises(UpstreamUnavailable, match="silent"):
                await anext(stream.batches())
        finally:
            stream.close()


class RecordingTransport:
    """Stands in for a socket's transport: records flow control."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def close(self) -> None:
        self.calls.append("close")


async def test_reading_pauses_while_decoded_reads_wait_and_resumes_as_they_are_taken() -> None:
    protocol = _Protocol()
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(HEAD)
    for n in range(_PAUSE_AT + 10):  # each socket read one event, none taken yet
        protocol.data_received(chunk(frame({"n": n})))
    assert transport.calls == ["pause"]  # TCP pushes back on opencode instead of memory growing
    taken = [await protocol.next_read(1) for _ in range(_PAUSE_AT + 10)]
    assert transport.calls == ["pause", "resume"]
    assert [json.loads(data[0])["n"] for data in taken] == list(range(_PAUSE_AT + 10))


async def test_a_proxy_from_the_environment_is_used_for_the_stream_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(frame({"via": "proxy"})))
        await writer.drain()
        await reader.read()

    async with opencode(proxy) as (url, heads):
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", url)
        client = OpencodeClient("http://opencode.example:4096")
        async with client.global_events() as batches:
            assert await anext(batches) == [{"via": "proxy"}]
        await client.aclose()
    assert heads[0].startswith(b"GET http://opencode.example:4096/global/event ")
