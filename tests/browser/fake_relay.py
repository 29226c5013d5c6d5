"""A stand-in for the relay's HTTP API (docs/api.md) with canned agent behaviour.

Only for looking at the web UI without Redis and opencode (screenshots, the big-session
timing check). It serves the built app from src/opencode_relay/web/dist like the relay does.
Run: python tests/browser/fake_relay.py --port 8765
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

DIST = Path(__file__).resolve().parents[2] / "src" / "opencode_relay" / "web" / "dist"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns():020d}{next(_ids):06d}"


def now_ms() -> int:
    return int(time.time() * 1000)


class Fake:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # sid -> mid -> {info, parts}
        self.todos: dict[str, list] = {}
        self.diffs: dict[str, list] = {}
        self.status: dict[str, dict] = {}
        self.permissions: dict[str, dict] = {}
        self.questions: dict[str, dict] = {}
        self.replies: dict[str, asyncio.Future] = {}
        self.log: list[tuple[str, dict]] = []
        self.seq = 0
        self.cond = asyncio.Condition()
        self.tasks: dict[str, asyncio.Task] = {}

    async def emit(self, type_: str, props: dict) -> None:
        self.seq += 1
        event_id = f"{self.seq:012d}"
        event = {"id": f"evt_{event_id}", "type": type_, "properties": props}
        self.log.append((event_id, event))
        self._apply(event)
        async with self.cond:
            self.cond.notify_all()

    def _apply(self, event: dict) -> None:
        t, p = event["type"], event["properties"]
        if t == "message.updated":
            info = p["info"]
            self.messages.setdefault(info["sessionID"], {}).setdefault(info["id"], {"parts": {}})["info"] = info
        elif t == "message.part.updated":
            part = p["part"]
            entry = self.messages[part["sessionID"]][part["messageID"]]
            entry["parts"][part["id"]] = json.loads(json.dumps(part))
        elif t == "message.part.delta":
            part = self.messages[p["sessionID"]][p["messageID"]]["parts"][p["partID"]]
            part[p["field"]] = part.get(p["field"], "") + p["delta"]
        elif t == "todo.updated":
            self.todos[p["sessionID"]] = p["todos"]
        elif t == "session.diff":
            self.diffs[p["sessionID"]] = p["diff"]
        elif t == "session.status":
            self.status[p["sessionID"]] = p["status"]
        elif t in ("session.updated", "session.created"):
            self.sessions[p["info"]["id"]] = p["info"]


fake = Fake()


def err(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def session_or_404(sid: str):
    return fake.sessions.get(sid)


async def make_session(title: str | None = None, directory: str = "/home/dev/project", parent: str | None = None,
                       created: int | None = None) -> dict:
    t = created or now_ms()
    info = {"id": new_id("ses"), "title": title or f"New session - {time.strftime('%H:%M:%S')}",
            "directory": directory, "projectID": "p1", "version": "1", "time": {"created": t, "updated": t}}
    if parent:
        info["parentID"] = parent
    fake.sessions[info["id"]] = info
    fake.messages[info["id"]] = {}
    await fake.emit("session.created", {"info": info})
    return info


# ---- canned agent ----------------------------------------------------------------------------

async def stream_text(sid: str, mid: str, kind: str, text: str, delay: float = 0.02) -> dict:
    part = {"id": new_id("prt"), "messageID": mid, "sessionID": sid, "type": kind, "text": "",
            "time": {"start": now_ms()}}
    await fake.emit("message.part.updated", {"part": part})
    for i in range(0, len(text), 6):
        await asyncio.sleep(delay)
        await fake.emit("message.part.delta", {"sessionID": sid, "messageID": mid, "partID": part["id"],
                                               "field": "text", "delta": text[i:i + 6]})
    part = dict(fake.messages[sid][mid]["parts"][part["id"]])
    part["time"] = {"start": part["time"]["start"], "end": now_ms()}
    await fake.emit("message.part.updated", {"part": part})
    return part


async def run_tool(sid: str, mid: str, tool: str, inp: dict, title: str, output: str, metadata: dict | None = None,
                   running_for: float = 0.6, error: str | None = None) -> None:
    part = {"id": new_id("prt"), "messageID": mid, "sessionID": sid, "type": "tool", "tool": tool,
            "callID": new_id("call"), "state": {"status": "pending", "input": {}, "raw": ""}}
    await fake.emit("message.part.updated", {"part": part})
    await asyncio.sleep(0.2)
    part = {**part, "state": {"status": "running", "input": inp, "title": title, "time": {"start": now_ms()}}}
    await fake.emit("message.part.updated", {"part": part})
    await asyncio.sleep(running_for)
    if error:
        state = {"status": "error", "input": inp, "error": error, "time": {"start": now_ms(), "end": now_ms()}}
    else:
        state = {"status": "completed", "input": inp, "output": output, "title": title,
                 "metadata": metadata or {}, "time": {"start": now_ms(), "end": now_ms()}}
    await fake.emit("message.part.updated", {"part": {**part, "state": state}})


async def agent(sid: str, text: str) -> None:
    umid = new_id("msg")
    await fake.emit("message.updated", {"info": {"id": umid, "sessionID": sid, "role": "user",
                                                 "time": {"created": now_ms()}, "agent": "build"}})
    await fake.emit("message.part.updated", {"part": {"id": new_id("prt"), "messageID": umid, "sessionID": sid,
                                                      "type": "text", "text": text}})
    await fake.emit("session.status", {"sessionID": sid, "status": {"type": "busy"}})
    amid = new_id("msg")
    info = {"id": amid, "sessionID": sid, "role": "assistant", "time": {"created": now_ms()}, "parentID": umid,
            "modelID": "scripted-model", "providerID": "scripted", "mode": "build", "agent": "build"}
    await fake.emit("message.updated", {"info": info})
    try:
        await fake.emit("message.part.updated", {"part": {"id": new_id("prt"), "messageID": amid, "sessionID": sid,
                                                          "type": "step-start"}})
        if "xss" in text:
            await stream_text(sid, amid, "text",
                              "Here: <script>window.__pwned=1</script> <img src=x onerror=\"window.__pwned=2\"> "
                              "[link](https://example.com) and `code`.")
        elif "slow" in text:
            await stream_text(sid, amid, "text", "Counting slowly. " + " ".join(str(i) for i in range(400)), 0.15)
        else:
            await stream_text(sid, amid, "reasoning", "The user wants a demo. I should list files, plan, then edit.")
            await stream_text(sid, amid, "text", "I'll look at the project first.")
            await run_tool(sid, amid, "bash", {"command": "ls -la", "description": "List files"}, "List files",
                           "total 8\n-rw-r--r-- 1 dev dev 120 app.py\n-rw-r--r-- 1 dev dev 40 README.md\n",
                           {"output": "total 8\n-rw-r--r-- 1 dev dev 120 app.py\n", "exit": 0})
            todos = [{"content": "Read app.py", "status": "completed", "priority": "high", "id": "1"},
                     {"content": "Add a greeting", "status": "in_progress", "priority": "high", "id": "2"},
                     {"content": "Run the tests", "status": "pending", "priority": "medium", "id": "3"}]
            await run_tool(sid, amid, "todowrite", {"todos": todos}, "2 todos", json.dumps(todos), running_for=0.1)
            await fake.emit("todo.updated", {"sessionID": sid, "todos": todos})
            if "permission" in text:
                rid = new_id("per")
                req = {"id": rid, "sessionID": sid, "permission": "edit", "patterns": ["app.py"],
                       "metadata": {"filepath": "/home/dev/project/app.py",
                                    "diff": "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,3 @@\n def main():\n-    pass\n+    print('hello')\n+    return 0\n"},
                       "always": ["*"]}
                fake.permissions[rid] = req
                fut = asyncio.get_running_loop().create_future()
                fake.replies[rid] = fut
                await fake.emit("permission.asked", req)
                reply = await fut
                fake.permissions.pop(rid, None)
                await fake.emit("permission.replied", {"sessionID": sid, "requestID": rid, "reply": reply})
                if reply == "reject":
                    await run_tool(sid, amid, "edit", {"filePath": "/home/dev/project/app.py"}, "app.py", "",
                                   error="The user rejected permission to use this specific tool call.")
                    raise asyncio.CancelledError
            if "question" in text:
                rid = new_id("que")
                req = {"id": rid, "sessionID": sid, "questions": [
                    {"question": "Which greeting should I use?", "header": "Greeting",
                     "options": [{"label": "hello", "description": "Plain"}, {"label": "hi", "description": "Casual"}]}]}
                fake.questions[rid] = req
                fut = asyncio.get_running_loop().create_future()
                fake.replies[rid] = fut
                await fake.emit("question.asked", req)
                await fut
                fake.questions.pop(rid, None)
                await fake.emit("question.replied", {"sessionID": sid, "requestID": rid})
            before = "def main():\n    pass\n"
            after = "def main():\n    print('hello')\n    return 0\n"
            diff = ("Index: /home/dev/project/app.py\n===================================================================\n"
                    "--- /home/dev/project/app.py\n+++ /home/dev/project/app.py\n@@ -1,2 +1,3 @@\n def main():\n-    pass\n"
                    "+    print('hello')\n+    return 0\n")
            await run_tool(sid, amid, "edit", {"filePath": "/home/dev/project/app.py", "oldString": "    pass",
                                               "newString": "    print('hello')\n    return 0"}, "app.py", "Edit applied successfully.",
                           {"diff": diff, "filediff": {"file": "app.py", "before": before, "after": after,
                                                       "additions": 2, "deletions": 1}})
            await fake.emit("session.diff", {"sessionID": sid, "diff": [
                {"file": "app.py", "before": before, "after": after, "additions": 2, "deletions": 1}]})
            await run_tool(sid, amid, "bash", {"command": "pytest -q", "description": "Run tests"}, "Run tests", "",
                           error="Command failed: pytest not found")
            await stream_text(sid, amid, "text", "Done. Here is the change:\n\n```python\ndef main():\n    print('hello')\n"
                                                 "    return 0\n```\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
        await fake.emit("message.part.updated", {"part": {"id": new_id("prt"), "messageID": amid, "sessionID": sid,
                                                          "type": "step-finish", "reason": "stop"}})
        info = {**info, "time": {**info["time"], "completed": now_ms()}}
        await fake.emit("message.updated", {"info": info})
    except asyncio.CancelledError:
        info = {**info, "error": {"name": "MessageAbortedError", "data": {"message": "Aborted"}},
                "time": {**info["time"], "completed": now_ms()}}
        await fake.emit("message.updated", {"info": info})
        await fake.emit("session.error", {"sessionID": sid, "error": {"name": "MessageAbortedError",
                                                                      "data": {"message": "Aborted"}}})
    finally:
        await fake.emit("session.status", {"sessionID": sid, "status": {"type": "idle"}})
        await fake.emit("session.idle", {"sessionID": sid})
        fake.tasks.pop(sid, None)


# ---- routes --------------------------------------------------------------------------------

async def index(_: Request) -> Response:
    return FileResponse(DIST / "index.html")


async def list_sessions(request: Request) -> Response:
    limit = int(request.query_params.get("limit", 50))
    search = request.query_params.get("search", "").lower()
    items = sorted(fake.sessions.values(), key=lambda s: s["time"]["created"], reverse=True)
    items = [s for s in items if search in s["title"].lower()][:limit]
    return JSONResponse({"sessions": items})


async def create_session(request: Request) -> Response:
    body = await request.json() if await request.body() else {}
    return JSONResponse(await make_session(body.get("title"), body.get("directory") or "/home/dev/project"))


async def one_session(request: Request) -> Response:
    sid = request.path_params["sid"]
    s = session_or_404(sid)
    if not s:
        return err(404, "not_found", f"No session {sid}.")
    if request.method == "GET":
        return JSONResponse({"session": s})
    if request.method == "PATCH":
        body = await request.json()
        s = {**s, "title": body["title"], "time": {**s["time"], "updated": now_ms()}}
        await fake.emit("session.updated", {"info": s})
        return JSONResponse({"session": s})
    fake.sessions.pop(sid)
    await fake.emit("session.deleted", {"info": s})
    return JSONResponse({"deleted": True})


async def messages(request: Request) -> Response:
    sid = request.path_params["sid"]
    if sid not in fake.sessions:
        return err(404, "not_found", f"No session {sid}.")
    out = [{"info": m["info"], "parts": sorted(m["parts"].values(), key=lambda p: p["id"])}
           for m in sorted(fake.messages.get(sid, {}).values(), key=lambda m: m["info"]["id"])]
    cursor = fake.log[-1][0] if fake.log else "0"
    return JSONResponse({"messages": out, "cursor": cursor})


async def prompt(request: Request) -> Response:
    sid = request.path_params["sid"]
    if sid not in fake.sessions:
        return err(404, "not_found", f"No session {sid}.")
    body = await request.json()
    if "fail" in body.get("text", ""):
        return err(502, "upstream", "opencode answered 500: the model provider is down.")
    fake.tasks[sid] = asyncio.create_task(agent(sid, body.get("text", "")))
    return JSONResponse({"accepted": True}, status_code=202)


async def abort(request: Request) -> Response:
    task = fake.tasks.get(request.path_params["sid"])
    if task:
        task.cancel()
    return JSONResponse({"aborted": True})


async def status(request: Request) -> Response:
    return JSONResponse({"status": fake.status.get(request.path_params["sid"], {"type": "idle"})})


async def todos(request: Request) -> Response:
    return JSONResponse({"todos": fake.todos.get(request.path_params["sid"], [])})


async def diff(request: Request) -> Response:
    return JSONResponse({"diff": fake.diffs.get(request.path_params["sid"], [])})


async def requests_(request: Request) -> Response:
    sid = request.path_params["sid"]
    return JSONResponse({"permissions": [p for p in fake.permissions.values() if p["sessionID"] == sid],
                         "questions": [q for q in fake.questions.values() if q["sessionID"] == sid]})


async def reply(request: Request) -> Response:
    rid = request.path_params["rid"]
    fut = fake.replies.pop(rid, None)
    if not fut:
        return err(404, "not_found", "No such request.")
    body = await request.json() if await request.body() else {}
    fut.set_result(body.get("reply") or body.get("answers") or "reject")
    return JSONResponse({"ok": True})


async def agents(_: Request) -> Response:
    return JSONResponse({"agents": [{"name": "build", "mode": "primary", "description": "Builds"},
                                    {"name": "plan", "mode": "primary", "description": "Plans"},
                                    {"name": "general", "mode": "subagent"}]})


async def providers(_: Request) -> Response:
    return JSONResponse({"providers": [{"id": "scripted", "name": "Scripted", "models": {
        "scripted-model": {"id": "scripted-model", "name": "Scripted model"}}}],
        "default": {"scripted": "scripted-model"}})


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok", "opencode": {"ok": True, "version": "fake"}, "redis": {"ok": True}})


def _belongs(event: dict, sid: str | None) -> bool:
    if sid is None:
        return True
    p = event["properties"]
    own = p.get("sessionID") or (p.get("info") or {}).get("sessionID") or (p.get("part") or {}).get("sessionID")
    if event["type"].startswith("session.") and "info" in p:
        own = p["info"]["id"]
    return own == sid or (own in fake.sessions and fake.sessions[own].get("parentID") == sid)


async def events(request: Request) -> Response:
    sid = request.path_params.get("sid")
    after = request.headers.get("last-event-id") or request.query_params.get("after")
    if after is None:
        after = fake.log[-1][0] if fake.log else "0"

    async def gen():
        pos = after
        yield b"retry: 2000\n\n"
        while True:
            pending = [(i, e) for i, e in fake.log if i > pos]
            for i, e in pending:
                pos = i
                if _belongs(e, sid):
                    yield f"id: {i}\ndata: {json.dumps(e)}\n\n".encode()
            async with fake.cond:
                try:
                    await asyncio.wait_for(fake.cond.wait(), 15)
                except asyncio.TimeoutError:
                    yield b": heartbeat\n\n"

    return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def seed(request: Request) -> Response:
    """Makes a session with n messages (half user, half assistant with a tool call)."""
    n = int(request.query_params.get("n", 2000))
    s = await make_session(f"Big session ({n} messages)")
    sid = s["id"]
    for k in range(n):
        mid = new_id("msg")
        role = "user" if k % 2 == 0 else "assistant"
        info = {"id": mid, "sessionID": sid, "role": role, "time": {"created": now_ms()}}
        parts = {}
        pid = new_id("prt")
        text = (f"Question {k}: please change `file_{k}.py`." if role == "user" else
                f"Answer {k}. Here is some **markdown** and code:\n\n```python\ndef f_{k}(x):\n    return x * {k}\n```\n")
        parts[pid] = {"id": pid, "messageID": mid, "sessionID": sid, "type": "text", "text": text}
        if role == "assistant":
            tid = new_id("prt")
            parts[tid] = {"id": tid, "messageID": mid, "sessionID": sid, "type": "tool", "tool": "bash",
                          "callID": f"c{k}", "state": {"status": "completed", "input": {"command": f"echo {k}"},
                                                       "output": f"{k}\n", "title": f"echo {k}", "metadata": {}}}
        fake.messages[sid][mid] = {"info": info, "parts": parts}
    return JSONResponse({"session": s})


app = Starlette(routes=[
    Route("/", index),
    Route("/api/sessions", list_sessions, methods=["GET"]),
    Route("/api/sessions", create_session, methods=["POST"]),
    Route("/api/sessions/{sid}", one_session, methods=["GET", "PATCH", "DELETE"]),
    Route("/api/sessions/{sid}/messages", messages),
    Route("/api/sessions/{sid}/prompt", prompt, methods=["POST"]),
    Route("/api/sessions/{sid}/abort", abort, methods=["POST"]),
    Route("/api/sessions/{sid}/status", status),
    Route("/api/sessions/{sid}/todos", todos),
    Route("/api/sessions/{sid}/diff", diff),
    Route("/api/sessions/{sid}/requests", requests_),
    Route("/api/sessions/{sid}/permissions/{rid}", reply, methods=["POST"]),
    Route("/api/sessions/{sid}/questions/{rid}", reply, methods=["POST"]),
    Route("/api/sessions/{sid}/questions/{rid}/reject", reply, methods=["POST"]),
    Route("/api/sessions/{sid}/events", events),
    Route("/api/events", events),
    Route("/api/agents", agents),
    Route("/api/providers", providers),
    Route("/api/health", health),
    Route("/_fake/seed", seed, methods=["POST"]),
    Mount("/assets", StaticFiles(directory=DIST / "assets", check_dir=False)),
])


async def login(request: Request) -> Response:
    body = await request.json()
    if body.get("token") != AUTH_TOKEN:
        return err(401, "unauthorized", "Unknown or expired token.")
    response = JSONResponse({"principal": {"id": "u1", "name": "tester", "admin": False}, "auth": True})
    response.set_cookie("ocr_session", "ok", httponly=True, samesite="strict")
    return response


async def logout(_: Request) -> Response:
    response = JSONResponse({"ok": True})
    response.delete_cookie("ocr_session")
    return response


async def me(request: Request) -> Response:
    return JSONResponse({"principal": {"id": "u1", "name": "tester", "admin": False}, "auth": AUTH_TOKEN is not None})


AUTH_TOKEN: str | None = None
app.router.routes[:0] = [Route("/api/login", login, methods=["POST"]), Route("/api/logout", logout, methods=["POST"]),
                         Route("/api/me", me)]


async def auth(request: Request, call_next):
    path = request.url.path
    if (AUTH_TOKEN and path.startswith("/api/") and path not in ("/api/login", "/api/logout")
            and request.cookies.get("ocr_session") != "ok"):
        return err(401, "unauthorized", "Sign in first.")
    return await call_next(request)


app.add_middleware(BaseHTTPMiddleware, dispatch=auth)


if __name__ == "__main__":
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--auth-token", default=None, help="require this token (login page)")
    args = parser.parse_args()
    AUTH_TOKEN = args.auth_token
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
