"""A minimal Server-Sent Events decoder (the WHATWG rules that opencode's streams use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator


@dataclass
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


async def decode(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    data: list[str] = []
    event, event_id, retry = "message", None, None
    async for line in lines:
        if line == "":
            if data:
                yield ServerSentEvent("\n".join(data), event, event_id, retry)
            data, event, retry = [], "message", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    if data:
        yield ServerSentEvent("\n".join(data), event, event_id, retry)
