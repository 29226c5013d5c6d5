"""A relay with RELAY_AUTH on, and tokens made with the real `opencode-relay token` command."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import httpx

from tests.support.stack import RelayProcess


def relay_cli(relay: RelayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opencode_relay.cli", *args], env=relay.env,
                          capture_output=True, text=True, timeout=60)


def make_token(relay: RelayProcess, name: str, admin: bool = False,
               terminal: bool = False) -> str:
    done = relay_cli(relay, "token", "create", "--name", name, *(["--admin"] if admin else []),
                     *(["--terminal"] if terminal else []))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def token_id(relay: RelayProcess, name: str) -> str:
    listed = relay_cli(relay, "token", "list").stdout.splitlines()
    return next(line.split("\t")[0] for line in listed if line.split("\t")[1] == name)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Caller:
    name: str
    token: str
    client: httpx.Client
