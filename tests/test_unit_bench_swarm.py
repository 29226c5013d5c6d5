"""The bench's client swarm counts each event once, and the replica bench's layout.

The replicas bench (bench/replicas.py) claims "nothing lost, nothing twice" from the swarm's
counts, so the swarm must tell an event sent twice on one stream from two events.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from bench.burst import reached
from bench.harness import ROOT
from bench.replicas import Group, layout

pytestmark = pytest.mark.unit


def _frame(stamp: int) -> bytes:
    return b'data: {"payload":{"properties":{"benchT":%d}}}\n\n' % stamp


async def _serve_stamps(frames: list[bytes]) -> asyncio.Server:
    """An SSE server that writes `frames` to each client once its request has arrived."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n: hello\n\n")
        await writer.drain()
        await asyncio.sleep(0.2)  # after the swarm has said `connected`
        writer.write(b"".join(frames))
        await writer.drain()
        await reader.read()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _swarm(url: str, clients: int, expect: int) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.clients", url, "--clients", str(clients),
        "--expect", str(expect), cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stdin is not None
    assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"connected"
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 5)
    except TimeoutError:  # not every event came: ask for what it has
        process.stdin.write(b"stop\n")
        await process.stdin.drain()
        line = await asyncio.wait_for(process.stdout.readline(), 30)
    await asyncio.wait_for(process.wait(), 30)
    found: dict[str, object] = json.loads(line)
    return found


async def test_swarm_counts_an_event_sent_twice_once() -> None:
    now = 1_000_000
    server = await _serve_stamps([_frame(now), _frame(now + 1), _frame(now), _frame(now + 2)])
    port = server.sockets[0].getsockname()[1]
    try:
        found = await _swarm(f"http://127.0.0.1:{port}/events", clients=2, expect=3)
    finally:
        server.close()
    assert found["counts"] == [3, 3]  # distinct events per client
    assert found["repeated"] == 2  # one per client
    assert len(found["latencies_us"]) == 6  # type: ignore[arg-type]


async def test_swarm_counts_the_frames_that_hold_every_text_given_in_one_pass_per_read() -> None:
    wanted = [b'data: {"type":"delta","sessionID":"ses_a","delta":"%s"}\n\n' % text
              for text in (b"ab", b'c\\"d', b"", b"efgh", b"i")]
    others = [b'data: {"type":"delta","sessionID":"ses_b"}\n\n',  # another session
              b'data: {"type":"updated","sessionID":"ses_a"}\n\n']  # not a delta
    server = await _serve_stamps([wanted[0], others[0], wanted[1] + wanted[2], others[1],
                                  wanted[3], wanted[4]])
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/events"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.clients", url, "--clients", "2", "--expect", "11",
            "--frames-with", '"delta"', "--frames-with", "ses_a", cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"connected"
        found = json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
        await asyncio.wait_for(process.wait(), 30)
    finally:
        server.close()
    assert found["counts"] == [11, 11]  # characters of delta text, as sent
    assert [len(arrivals) for arrivals in found["arrivals_ns"]] == [5, 5]
    assert found["sizes"] == [[2, 4, 0, 4, 1]] * 2


def test_a_delta_reaches_a_relay_client_with_the_frame_that_completes_its_text() -> None:
    # Direct: five deltas of 2 characters; the relay sent them as 2 + 6 (a run) + 2.
    assert reached([10, 20, 30], [2, 6, 2], [2, 2, 2, 2, 2]) == [10, 20, 20, 20, 30]
    # A client that has less text has reached only the deltas it holds whole.
    assert reached([10, 20], [2, 3], [2, 2, 2]) == [10, 20]
    assert reached([], [], [2]) == []


def test_layout_spreads_clients_evenly_and_stalls_one_percent_on_two_standbys() -> None:
    urls = [f"http://127.0.0.1:{port}/api/events" for port in (1, 2, 3, 4)]
    groups = layout(urls, 10_000)
    assert groups == [Group(urls[0], 2_500, 0), Group(urls[1], 2_500, 50),
                      Group(urls[2], 2_500, 50), Group(urls[3], 2_500, 0)]
