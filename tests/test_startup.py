"""However the relay is started, it fails closed; however it is stopped, it stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis, free_port
from tests.support.stack import wait_for

pytestmark = pytest.mark.integration


def outward_address() -> str:
    """An address of this machine that is not loopback (the route to the outside)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the interface
        address = sock.getsockname()[0]
    if address.startswith("127."):
        pytest.fail("this machine has no non-loopback address to test remote callers with")
    return address


def start_uvicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The app factory served by uvicorn itself, as a deployment might, not by our CLI."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "opencode_relay.app:create_app",
         "--host", "0.0.0.0", "--port", str(port)],
        env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
             60, "uvicorn to serve the relay")
    return process


@pytest.mark.parametrize("auth", [None, "false", "true"])
def test_uvicorn_factory_fails_closed_for_remote_callers(
        auth: str | None, redis_server: EmbeddedRedis, opencode: EmbeddedOpencode,
        tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RELAY_AUTH"}
    env.update(REDIS_URL=redis_server.url, OPENCODE_SERVER_URL=opencode.url,
               RELAY_KEY_PREFIX=f"startup-{port}:")
    if auth is not None:
        env["RELAY_AUTH"] = auth
    process = start_uvicorn(env, port, tmp_path / "uvicorn.log")
    try:
        remote = httpx.get(f"http://{outward_address()}:{port}/api/sessions", timeout=10)
        local = httpx.get(f"http://127.0.0.1:{port}/api/sessions", timeout=10)
        if auth is None:  # nobody said: only this machine is served
            assert remote.status_code == 403, remote.text
            assert remote.json()["error"]["code"] == "loopback_only"
            assert "RELAY_AUTH" in remote.json()["error"]["message"]
            assert local.status_code == 200
        elif auth == "false":  # the operator said so explicitly
            assert remote.status_code == 200
            assert local.status_code == 200
        else:
            assert remote.status_code == 401
            assert local.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_clean_stop_of_the_whole_thing_prints_no_errors(stop_signal: int, tmp_path: Path) -> None:
    """`make run` with nothing configured (embedded Redis and opencode), stopped the way a person
    stops it: Ctrl+C or SIGTERM to the whole process group."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "OPENCODE_SERVER_URL", "RELAY_AUTH",
                        "RELAY_WORKSPACE_ROOTS", "OPENCODE_DEFAULT_DIRECTORY")}
    env.update(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_LOG_FORMAT="json", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_STATE_HOME=str(home / "state"))
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "opencode_relay.cli", "serve", "--port", str(port)],
        env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{log.read_text()[-3000:]}")
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            return response.status_code == 200 and response.json()["opencode"]["events"] == \
                "connected"

        wait_for(ready, 90, "the relay with its embedded Redis and opencode")
        # Nothing configured: the workspace root is made under the data folder, and the agent
        # works there (not in the current folder, the relay's own source tree).
        workspace = str((tmp_path / "data" / "workspace").resolve())
        created = httpx.post(f"http://127.0.0.1:{port}/api/sessions", json={}, timeout=30)
        assert created.status_code == 200, created.text
        assert created.json()["directory"] == workspace
        projects = httpx.get(f"http://127.0.0.1:{port}/api/projects", timeout=30).json()
        assert (projects["roots"], projects["default"]) == ([workspace], workspace)
        redis_url = (tmp_path / "data" / "redis.url").read_text().strip()
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        os.killpg(process.pid, stop_signal)
        # uvicorn ends by re-raising the signal it caught, as a program stopped by it should
        # (Ctrl+C: 130, the shell's code for it).
        assert process.wait(timeout=60) in (0, 130, -stop_signal)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    loud = [line for line in lines if line.get("level") in ("warning", "error", "critical")]
    assert not loud, f"a clean stop logged problems: {loud}"
    assert "Traceback" not in log.read_text()
    assert any("event streams ended for shutdown" in line.get("message", "") for line in lines)
    # The embedded Redis was stopped after the relay, and stopped for good.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
