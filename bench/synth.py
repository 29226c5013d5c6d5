"""Realistic opencode events, generated: the shapes `opencode serve` 1.18 sends on `/global/event`.

The mix follows a captured real stream of one agent turn: per assistant message a step-start,
a reasoning part and a text part each streamed as many 8-character `message.part.delta` events
and closed with a `message.part.updated` carrying the full text, a tool part (pending, running,
completed) and a step-finish, with `message.updated` and `session.status` around them. About
90% of the events are deltas, as in a real stream.
"""

from __future__ import annotations

import itertools
import json
import random
import string
import time
from collections.abc import Iterator
from typing import Any

DIRECTORY = "/tmp/bench-project"
_ALPHABET = string.ascii_letters + string.digits
_WORDS = ("the relay keeps every session in redis and streams each event to the browser "
          "while opencode works on the code base refactoring tests and reading files").split()


class Ids:
    """opencode-style ids: prefix, 12 hex digits that grow, 14 random characters."""

    def __init__(self, seed: int = 1) -> None:
        self._rng = random.Random(seed)
        self._counter = itertools.count(int(time.time() * 1000) * 0x1000)

    def __call__(self, prefix: str) -> str:
        tail = "".join(self._rng.choice(_ALPHABET) for _ in range(14))
        return f"{prefix}_{next(self._counter):012x}{tail}"


def frame(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def session_info(sid: str, title: str, now_ms: int) -> dict[str, Any]:
    return {"id": sid, "slug": "bench-session", "projectID": "global", "directory": DIRECTORY,
            "path": DIRECTORY.lstrip("/"), "title": title, "agent": "build",
            "model": {"id": "m", "providerID": "scripted", "variant": "default"},
            "version": "1.18.33", "cost": 0,
            "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
            "time": {"created": now_ms, "updated": now_ms}}


class Conversation:
    """Emits the events of agent turns in one session, with fresh ids."""

    def __init__(self, ids: Ids, rng: random.Random, title: str = "bench") -> None:
        self.ids, self.rng = ids, rng
        self.sid = ids("ses")
        self.title = title
        self.now = int(time.time() * 1000)

    def _wrap(self, kind: str, props: dict[str, Any]) -> dict[str, Any]:
        return {"directory": DIRECTORY, "project": "global",
                "payload": {"id": self.ids("evt"), "type": kind, "properties": props}}

    def created(self) -> Iterator[dict[str, Any]]:
        info = session_info(self.sid, self.title, self.now)
        yield self._wrap("session.created", {"sessionID": self.sid, "info": info})

    def _text(self, chars: int) -> str:
        words: list[str] = []
        size = 0
        while size < chars:
            word = self.rng.choice(_WORDS)
            words.append(word)
            size += len(word) + 1
        return " ".join(words)[:chars]

    def _part(self, mid: str, kind: str, **extra: Any) -> dict[str, Any]:
        return {"id": self.ids("prt"), "messageID": mid, "sessionID": self.sid, "type": kind,
                **extra}

    def _streamed(self, mid: str, kind: str, chars: int) -> Iterator[dict[str, Any]]:
        part = self._part(mid, kind, text="", time={"start": self.now})
        yield self._wrap("message.part.updated", {"sessionID": self.sid, "part": part,
                                                  "time": self.now})
        text = self._text(chars)
        for i in range(0, len(text), 8):
            yield self._wrap("message.part.delta", {
                "sessionID": self.sid, "messageID": mid, "partID": part["id"],
                "field": "text", "delta": text[i:i + 8]})
        done = dict(part, text=text, time={"start": self.now, "end": self.now + 5})
        yield self._wrap("message.part.updated", {"sessionID": self.sid, "part": done,
                                                  "time": self.now})

    def turn(self, text_chars: int = 1600, reasoning_chars: int = 200) -> Iterator[dict[str, Any]]:
        """One user prompt and one assistant message: ~ (text+reasoning)/8 deltas + 14 others."""
        self.now += 1000
        sid = self.sid
        user = {"id": self.ids("msg"), "role": "user", "sessionID": sid,
                "time": {"created": self.now}, "agent": "build",
                "model": {"providerID": "scripted", "modelID": "m"}}
        yield self._wrap("message.updated", {"sessionID": sid, "info": user})
        prompt = self._part(user["id"], "text", text=self._text(120))
        yield self._wrap("message.part.updated", {"sessionID": sid, "part": prompt,
                                                  "time": self.now})
        yield self._wrap("session.status", {"sessionID": sid, "status": {"type": "busy"}})
        mid = self.ids("msg")
        assistant = {"id": mid, "sessionID": sid, "role": "assistant",
                     "time": {"created": self.now}, "parentID": user["id"], "modelID": "m",
                     "providerID": "scripted", "mode": "build", "agent": "build",
                     "path": {"cwd": DIRECTORY, "root": DIRECTORY}, "cost": 0,
                     "tokens": {"input": 0, "output": 0, "reasoning": 0,
                                "cache": {"read": 0, "write": 0}}}
        yield self._wrap("message.updated", {"sessionID": sid, "info": assistant})
        yield self._wrap("message.part.updated", {
            "sessionID": sid, "part": self._part(mid, "step-start"), "time": self.now})
        yield from self._streamed(mid, "reasoning", reasoning_chars)
        yield from self._streamed(mid, "text", text_chars)
        tool = self._part(mid, "tool", tool="read", callID=f"call_{self.rng.randrange(10**6)}",
                          state={"status": "pending", "input": {}, "raw": ""})
        yield self._wrap("message.part.updated", {"sessionID": sid, "part": tool,
                                                  "time": self.now})
        args = {"filePath": f"{DIRECTORY}/src/module_{self.rng.randrange(100)}.py"}
        running = dict(tool, state={"status": "running", "input": args,
                                    "time": {"start": self.now}})
        yield self._wrap("message.part.updated", {"sessionID": sid, "part": running,
                                                  "time": self.now})
        completed = dict(tool, state={"status": "completed", "input": args,
                                      "output": self._text(600), "title": args["filePath"],
                                      "metadata": {"truncated": False},
                                      "time": {"start": self.now, "end": self.now + 10}})
        yield self._wrap("message.part.updated", {"sessionID": sid, "part": completed,
                                                  "time": self.now})
        finish = self._part(mid, "step-finish", reason="stop", cost=0,
                            tokens={"total": 15, "input": 10, "output": 5, "reasoning": 0,
                                    "cache": {"write": 0, "read": 0}})
        yield self._wrap("message.part.updated", {"sessionID": sid, "part": finish,
                                                  "time": self.now})
        done = dict(assistant, time={"created": self.now, "completed": self.now + 20},
                    finish="stop")
        yield self._wrap("message.updated", {"sessionID": sid, "info": done})
        yield self._wrap("session.status", {"sessionID": sid, "status": {"type": "idle"}})
        yield self._wrap("session.idle", {"sessionID": sid})


def stream(count: int, sessions: int = 4, seed: int = 1) -> list[dict[str, Any]]:
    """`count` events of `sessions` conversations taking turns, as opencode interleaves them."""
    rng = random.Random(seed)
    ids = Ids(seed)
    talks = [Conversation(ids, rng, f"bench {i}") for i in range(sessions)]
    out: list[dict[str, Any]] = []
    for talk in talks:
        out.extend(talk.created())
    turns = [talk.turn() for talk in talks]
    while len(out) < count:
        i = rng.randrange(len(talks))
        chunk = list(itertools.islice(turns[i], rng.randint(5, 40)))
        if len(chunk) == 0:
            turns[i] = talks[i].turn()
            continue
        out.extend(chunk)
    return out[:count]

