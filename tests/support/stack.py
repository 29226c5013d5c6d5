"""The real stack for integration tests: Redis, a scripted LLM, `opencode serve`, the relay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from opencode_relay.launch.embedded import EmbeddedOpencode, free_port
from opencode_relay.testing.scripted_provider import ScriptedProvider

REFUSED_PORT = 9  # "discard": nothing listens on it here, so connections are refused


def write_opencode_config(directory: Path, provider: ScriptedProvider) -> None:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"scripted": {
            "npm": "@ai-sdk/openai-compatible", "name": "Scripted",
            "options": {"baseURL": provider.base_url, "apiKey": "x"},
            # Takes images and PDFs, so attachments reach it as content parts.
            "models": {"m": {"name": "Scripted model", "tool_call": True, "attachment": True,
                             "modalities": {"input": ["text", "image", "pdf"],
                                            "output": ["text"]}},
                       "m2": {"name": "Second scripted model", "tool_call": True}}},
            # A provider that cannot be reached: its port refuses connections.
            "down": {
                "npm": "@ai-sdk/openai-compatible", "name": "Down",
                "options": {"baseURL": f"http://127.0.0.1:{REFUSED_PORT}/v1", "apiKey": "x"},
                "models": {"m": {"name": "Unreachable model", "tool_call": True}}}},
        "model": "scripted/m",
        "small_model": "scripted/m",
        "permission": {"bash": "ask", "edit": "allow", "webfetch": "deny"},
        "autoupdate": False,
        "share": "disabled",
        # A user-defined slash command (the composer's tests run it).
        "command": {"relay-greet": {"description": "Greets someone warmly",
                                    "template": "Please greet $ARGUMENTS warmly."}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "opencode.json").write_text(json.dumps(config, indent=2))


def git_project(directory: Path, provider: ScriptedProvider,
                context_limit: int = 1000) -> Path:
    """A project folder that is a git repository, as opencode needs to snapshot files (undo):
    in a plain folder its revert restores nothing. The scripted model gets a context window."""
    write_opencode_config(directory, provider)
    config = json.loads((directory / "opencode.json").read_text())
    for model in config["provider"]["scripted"]["models"].values():
        model["limit"] = {"context": context_limit, "output": 500}
    (directory / "opencode.json").write_text(json.dumps(config, indent=2))
    subprocess.run(["git", "init", "-q"], cwd=directory, check=True)
    subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit",
                    "-q", "--allow-empty", "-m", "init"], cwd=directory, check=True)
    return directory


def start_opencode(root: Path, provider: ScriptedProvider, port: int | None = None,
                   password: str | None = None) -> EmbeddedOpencode:
    project = root / "project"
    write_opencode_config(project, provider)
    return EmbeddedOpencode(project, home=root / "home", port=port, password=password).start(
        log_path=root / "opencode.log", timeout=90)


def workspace_env(project: Path) -> dict[str, str]:
    """A relay's environment for a stack whose opencode works in `project`
    (`<stack>/opencode/project`): the whole stack folder is its workspace root, so sibling
    project folders are allowed too, and new sessions go to `project` by default."""
    return {"RELAY_WORKSPACE_ROOTS": str(project.parent.parent),
            "OPENCODE_DEFAULT_DIRECTORY": str(project)}


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, httpx.HTTPError) as exc:
            last_error = exc
        time.sleep(0.1)
    detail = f": {last_error}" if last_error else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


class RelayProcess:
    """`opencode-relay serve` in a subprocess, as a user would run it."""

    def __init__(self, redis_url: str, opencode_url: str, log_path: Path,
                 prefix: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.prefix = prefix or f"test-{uuid.uuid4().hex[:8]}:"
        self.env = dict(os.environ, REDIS_URL=redis_url, OPENCODE_SERVER_URL=opencode_url,
                        RELAY_KEY_PREFIX=self.prefix, RELAY_RECONNECT_MAX_SECONDS="1",
                        **(extra_env or {}))
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_synced: bool = True, ready: bool = True) -> RelayProcess:
        """Starts it and waits until it is ready (or, with `ready=False`, merely alive)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opencode_relay.cli", "serve", "--port", str(self.port),
             "--log-level", "info"],
            env=self.env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)

        def up() -> bool:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"relay exited: see {self.log_path}")
            if not ready:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            # /readyz: public (works with RELAY_AUTH on), same verdict as /api/health.
            response = httpx.get(f"{self.url}/readyz", timeout=2)
            return response.status_code == 200 and (
                not wait_synced or response.json()["opencode"]["events"] == "connected")

        wait_for(up, 60, "the relay to be healthy")
        return self

    def stop(self, timeout: float = 20) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class EventCollector:
    """Reads an SSE URL in a thread, keeping every event (and its id)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: list[ServerSentEvent] = []
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._response: httpx.Response | None = None

    def start(self) -> EventCollector:
        self._thread.start()
        wait_for(lambda: self.status is not None, 10, "the event stream to open")
        return self

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=None) as client, \
                    connect_sse(client, "GET", self.url, headers=self.headers) as source:
                self._response = source.response
                self.status = source.response.status_code
                previous_id: str | None = None
                for sse in source.iter_sse():
                    if self._stop.is_set():
                        return
                    if not sse.data:  # `retry:` alone: browsers dispatch nothing for it
                        continue
                    # An SSE reader carries the last id over to frames without an `id:` line
                    # (the relay's notices); the relay never repeats an id, so a repeated one
                    # means the frame had none.
                    own_id = sse.id if sse.id and sse.id != previous_id else None
                    previous_id = sse.id or previous_id
                    self.events.append(ServerSentEvent(data=sse.data, id=own_id))
        except httpx.HTTPError:
            return

    def close(self) -> None:
        self._stop.set()
        if self._response is not None:
            try:
                self._response.close()
            except Exception:
                pass
        self._thread.join(timeout=5)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in list(self.events)]

    def types(self) -> list[str]:
        return [p.get("type") for p in self.payloads()]

    def wait_for_type(self, kind: str, timeout: float = 30,
                      where: Callable[[dict[str, Any]], bool] = lambda _p: True) -> dict[str, Any]:
        return wait_for(lambda: next((p for p in self.payloads()
                                      if p.get("type") == kind and where(p)), None),
                        timeout, f"a {kind} event")


def watched_session(api: httpx.Client, relay_url: str,
                    title: str = "test") -> tuple[str, EventCollector]:
    """A new session, with a collector already reading its event stream."""
    response = api.post("/api/sessions", json={"title": title})
    assert response.status_code == 200, response.text
    sid = response.json()["id"]
    return sid, EventCollector(f"{relay_url}/api/sessions/{sid}/events").start()
