"""A scripted OpenAI-compatible chat-completions server, so opencode runs offline.

A test registers a *script* under a key and puts ``[[script:KEY]]`` in its prompt. Each
request from opencode whose conversation carries that marker gets the next *turn* of the
script: the turn index is the number of assistant messages after the last user message,
so a tool call's follow-up request (which carries the tool result) gets the next turn.

A turn is a list of steps, streamed in order as ``chat.completion.chunk`` events:

    {"reasoning": "..."}                  reasoning_content deltas
    {"text": "..."}                       content deltas (split into a few chunks)
    {"tool": "write", "args": {...}}      one tool call
    {"sleep": 0.2}                        pause between chunks (a slow model)
    {"fail": 500}                         answer with an HTTP error instead of a stream

Requests without tools (opencode's title generation) get a short title. A user message's content
may be a list of parts (`text`, `image_url`, `file`): the marker is looked for in its text parts,
and every request body is kept whole in ``ScriptBook.requests`` for tests to inspect.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Turn = list[dict[str, Any]]
MARKER = re.compile(r"\[\[script:([A-Za-z0-9_.-]+)\]\]")


@dataclass
class ScriptBook:
    """Scripts by key, plus a record of the requests that were served."""

    scripts: dict[str, list[Turn]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, turns: list[Turn]) -> str:
        self.scripts[key] = turns
        return f"[[script:{key}]]"

    def turn_for(self, body: dict[str, Any]) -> Turn:
        messages = body.get("messages", [])
        key = _script_key(messages)
        if key is None or key not in self.scripts:
            return [{"text": "No script matched this prompt."}]
        turns = self.scripts[key]
        index = _assistant_turns_since_last_user(messages)
        if index >= len(turns):
            return [{"text": "Script finished."}]
        return turns[index]


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(c.get("text", "") for c in content if isinstance(c, dict))
    return ""


def _script_key(messages: list[dict[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            found = MARKER.search(_text_of(message))
            if found:
                return found.group(1)
    return None


def _assistant_turns_since_last_user(messages: list[dict[str, Any]]) -> int:
    count = 0
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            break
        if role == "assistant":
            count += 1
    return count


_ids = itertools.count(1)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def _stream_turn(turn: Turn) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    called_tool = False
    tool_index = 0
    for step in turn:
        if "sleep" in step:
            await asyncio.sleep(float(step["sleep"]))
        elif "reasoning" in step:
            for piece in _pieces(step["reasoning"]):
                yield _chunk({"reasoning_content": piece})
        elif "text" in step:
            for piece in _pieces(step["text"]):
                yield _chunk({"content": piece})
        elif "tool" in step:
            called_tool = True
            arguments = json.dumps(step.get("args", {}))
            call_id = f"call_{next(_ids)}"
            head = {"index": tool_index, "id": call_id, "type": "function",
                    "function": {"name": step["tool"], "arguments": ""}}
            yield _chunk({"tool_calls": [head]})
            for piece in _pieces(arguments, 24):
                yield _chunk({"tool_calls": [{"index": tool_index,
                                              "function": {"arguments": piece}}]})
            tool_index += 1
    yield _chunk({}, finish="tool_calls" if called_tool else "stop")
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    tail = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": "m", "choices": [], "usage": usage}
    yield f"data: {json.dumps(tail)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def build_app(book: ScriptBook) -> Starlette:
    async def completions(request: Request) -> Response:
        body = await request.json()
        book.requests.append(body)
        if not body.get("tools"):
            turn: Turn = [{"text": "Scripted session"}]
        else:
            turn = book.turn_for(body)
        failure = next((s["fail"] for s in turn if "fail" in s), None)
        if failure is not None:
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}},
                                status_code=int(failure))
        if not body.get("stream"):
            text = "".join(s.get("text", "") for s in turn)
            return JSONResponse({
                "id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            })
        return StreamingResponse(_stream_turn(turn), media_type="text/event-stream")

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})

    return Starlette(routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ])


class ScriptedProvider:
    """Runs the scripted server in a background thread, on 127.0.0.1 unless `host` says
    another address (scripts/compose_check.py: the containers' network gateway)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.book = ScriptBook()
        self.host = host
        config = uvicorn.Config(build_app(self.book), host=host, port=port,
                                log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.servers[0].sockets[0].getsockname()[1]  # (host, port)
        return port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ScriptedProvider:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def script(self, key: str, turns: list[Turn]) -> str:
        """Register a script; returns the marker to put in the prompt."""
        return self.book.add(key, turns)
