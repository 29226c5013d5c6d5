"""A stand-in for opencode's REST API, for tests about the relay alone (httpx.MockTransport).

It keeps sessions in memory and answers the routes the relay calls, with opencode's shapes.
Tests that are about opencode's behaviour use the real `opencode serve` instead.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

JSON = dict[str, Any]


@dataclass
class FakeOpencode:
    sessions: dict[str, JSON] = field(default_factory=dict)
    prompts: list[tuple[str, JSON]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    # GET /file and GET /file/content: folder path -> its FileNodes, file path -> its reply
    folders: dict[str, list[JSON]] = field(default_factory=dict)
    files: dict[str, JSON] = field(default_factory=dict)
    down: bool = False        # every request fails to connect
    broken: bool = False      # every request gets a 500
    # What GET /project answers (opencode's catch-all `global` project at `/` by default).
    projects: list[JSON] = field(default_factory=lambda: [
        {"id": "global", "worktree": "/", "time": {"created": 1}, "sandboxes": []}])
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.broken:
            return httpx.Response(500, json={"name": "UnknownError",
                                             "data": {"message": "it broke"}})
        method, parts = request.method, request.url.path.strip("/").split("/")
        body = json.loads(request.content) if request.content else {}
        match method, parts:
            case "GET", ["global", "health"]:
                return httpx.Response(200, json={"healthy": True, "version": "fake"})
            case "GET", ["global", "event"]:
                return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                      content=b"")
            case "GET", ["agent"]:
                return httpx.Response(200, json=[{"name": "build", "mode": "primary"},
                                                 {"name": "plan", "mode": "primary"}])
            case "GET", ["config", "providers"]:
                return httpx.Response(200, json={
                    "providers": [{"id": "scripted", "models": {"m": {}, "m2": {}}}],
                    "default": {"scripted": "m"}})
            case "GET", ["project"]:
                return httpx.Response(200, json=self.projects)
            case "POST", ["session"]:
                sid = f"ses_fake{next(self._ids):06d}"
                now = int(time.time() * 1000)
                info = {"id": sid, "title": body.get("title") or "New session",
                        "directory": request.url.params.get("directory") or "/fake",
                        "time": {"created": now, "updated": now},
                        **({"parentID": body["parentID"]} if body.get("parentID") else {})}
                self.sessions[sid] = info
                return httpx.Response(200, json=info)
            case "GET", ["session", sid] if sid in self.sessions:
                return httpx.Response(200, json=self.sessions[sid])
            case "PATCH", ["session", sid] if sid in self.sessions:
                self.sessions[sid] = {**self.sessions[sid], **body}
                return httpx.Response(200, json=self.sessions[sid])
            case "DELETE", ["session", sid] if sid in self.sessions:
                del self.sessions[sid]
                return httpx.Response(200, json=True)
            case "GET", ["session", sid, ("message" | "todo" | "diff")] if sid in self.sessions:
                return httpx.Response(200, json=[])
            case "POST", ["session", sid, "prompt_async"] if sid in self.sessions:
                self.prompts.append((sid, body))
                return httpx.Response(204)
            case "POST", ["session", sid, "abort"] if sid in self.sessions:
                return httpx.Response(200, json=True)
            case "GET", ["file"] if request.url.params.get("path", "") in self.folders:
                return httpx.Response(200, json=self.folders[request.url.params.get("path", "")])
            case "GET", ["file", "content"]:  # opencode reads a missing file as empty text
                return httpx.Response(200, json=self.files.get(
                    request.url.params.get("path", ""), {"type": "text", "content": ""}))
            case _, ["session", _sid, *_rest]:
                return httpx.Response(404, json={"name": "NotFoundError",
                                                 "data": {"message": "Session not found"}})
        unknown = f"no route {method} {request.url.path}"
        return httpx.Response(404, json={"name": "NotFoundError", "data": {"message": unknown}})
