"""Terminals against the real opencode: who may open one, who may attach, Origin, input bounds,
and the end of a terminal when its credential ends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import RelayProcess

pytestmark = pytest.mark.integration

MAX_INPUT = 2048
INPUTS_PER_SECOND = 50


@pytest.fixture(scope="module")
def secured(stack_dir: Path, redis_server: EmbeddedRedis,
            opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / "terminal.log",
                           extra_env={"RELAY_AUTH": "true", "RELAY_COOKIE_SECURE": "false",
                                      "RELAY_TERMINAL_RECHECK_SECONDS": "0.5",
                                      "RELAY_TERMINAL_MAX_INPUT_BYTES": str(MAX_INPUT),
                                      "RELAY_TERMINAL_INPUTS_PER_SECOND":
                                          str(INPUTS_PER_SECOND)}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tokens(secured: RelayProcess) -> dict[str, str]:
    return {"alice": make_token(secured, "alice", terminal=True),
            "bob": make_token(secured, "bob", terminal=True),
            "carol": make_token(secured, "carol"),
            "root": make_token(secured, "root", admin=True)}


@pytest.fixture(scope="module")
def project(opencode: EmbeddedOpencode) -> Path:
    """A project folder of its own, beside the stack's (where workspace roots allow it)."""
    folder = opencode.directory.parent / f"term-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    return folder


def _session(secured: RelayProcess, token: str, directory: Path) -> str:
    created = httpx.post(f"{secured.url}/api/sessions", headers=bearer(token),
                         json={"title": "terminal", "directory": str(directory)}, timeout=60)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def _open(secured: RelayProcess, token: str, sid: str) -> httpx.Response:
    return httpx.post(f"{secured.url}/api/sessions/{sid}/terminal", headers=bearer(token),
                      timeout=60)


def _ws_url(secured: RelayProcess, pty_id: str, cursor: int | None = None) -> str:
    query = f"?cursor={cursor}" if cursor is not None else ""
    return f"ws://127.0.0.1:{secured.port}/api/terminals/{pty_id}/connect{query}"


def _attach(secured: RelayProcess, pty_id: str, headers: dict[str, str],
            cursor: int | None = None) -> ClientConnection:
    return connect(_ws_url(secured, pty_id, cursor), additional_headers=headers,
                   open_timeout=20, compression=None)


def _read_until(ws: ClientConnection, needle: str, timeout: float = 20) -> str:
    """The text output until `needle` shows (binary control frames skipped)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {seen[-500:]!r}"
        try:
            message = ws.recv(timeout=left)
        except TimeoutError:
            continue
        if isinstance(message, str):
            seen += message
    return seen


def _closed(ws: ClientConnection, timeout: float = 20) -> ConnectionClosed:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            continue
        except ConnectionClosed as exc:
            return exc
    raise AssertionError("the terminal's socket stayed open")


def _refused(secured: RelayProcess, pty_id: str, headers: dict[str, str]) -> httpx.Response:
    with pytest.raises(InvalidStatus) as refused:
        _attach(secured, pty_id, headers).close()
    return httpx.Response(refused.value.response.status_code,
                          content=bytes(refused.value.response.body or b""))


def test_a_granted_user_runs_a_shell_in_the_sessions_directory_and_reattaches(
        secured: RelayProcess, tokens: dict[str, str], project: Path,
        opencode: EmbeddedOpencode) -> None:
    sid = _session(secured, tokens["alice"], project)
    opened = _open(secured, tokens["alice"], sid)
    assert opened.status_code == 200, opened.text
    terminal = opened.json()
    assert terminal["id"].startswith("pty") and terminal["status"] == "running"
    assert terminal["cwd"] == str(project)
    with _attach(secured, terminal["id"], bearer(tokens["alice"])) as ws:
        ws.send('echo "hel""lo" && pwd\r')
        # The shell's answer, not the echo of what was typed (that has the quotes).
        out = _read_until(ws, f"hello\r\n{project}")
        assert 'echo "hel""lo"' in out
    # Opening the session's terminal again (a reload) gives the same shell, its output kept.
    again = _open(secured, tokens["alice"], sid)
    assert again.status_code == 200 and again.json()["id"] == terminal["id"]
    with _attach(secured, terminal["id"], bearer(tokens["alice"]), cursor=0) as ws:
        _read_until(ws, f"hello\r\n{project}")
    resized = httpx.put(f"{secured.url}/api/terminals/{terminal['id']}/size",
                        headers=bearer(tokens["alice"]), json={"rows": 40, "cols": 120})
    assert resized.status_code == 200, resized.text
    with _attach(secured, terminal["id"], bearer(tokens["alice"]), cursor=-1) as ws:
        ws.send("stty size\r")
        _read_until(ws, "40 120")
        # The shell exits: the socket closes normally and the terminal is gone.
        ws.send("exit\r")
        assert _closed(ws).rcvd is not None and _closed(ws).rcvd.code == 1000
    assert httpx.get(f"{opencode.url}/pty/{terminal['id']}").status_code == 404
    fresh = _open(secured, tokens["alice"], sid)
    assert fresh.status_code == 200 and fresh.json()["id"] != terminal["id"]


def test_only_admins_and_granted_tokens_may_open_one(
        secured: RelayProcess, tokens: dict[str, str], project: Path) -> None:
    me = {name: httpx.get(f"{secured.url}/api/me", headers=bearer(token)).json()
          for name, token in tokens.items()}
    assert {name: body["principal"]["terminal"] for name, body in me.items()} == {
        "alice": True, "bob": True, "carol": False, "root": True}
    sid = _session(secured, tokens["carol"], project)
    refused = _open(secured, tokens["carol"], sid)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "terminal_not_granted"
    assert "--terminal" in refused.json()["error"]["message"]
    # An admin may open one in anyone's session.
    assert _open(secured, tokens["root"], sid).status_code == 200
    listed = relay_cli(secured, "token", "list").stdout
    assert "\talice\tuser+terminal\t" in listed and "\tcarol\tuser\t" in listed


def test_nobody_else_may_attach_resize_or_end_a_terminal(
        secured: RelayProcess, tokens: dict[str, str], project: Path) -> None:
    sid = _session(secured, tokens["alice"], project)
    pty_id = _open(secured, tokens["alice"], sid).json()["id"]
    # Bob (granted too) cannot attach: to him it does not exist. Nor can an admin.
    for name in ("bob", "root"):
        refused = _refused(secured, pty_id, bearer(tokens[name]))
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "not_found"
        assert httpx.put(f"{secured.url}/api/terminals/{pty_id}/size", headers=bearer(
            tokens[name]), json={"rows": 5, "cols": 5}).status_code == 404
        assert httpx.delete(f"{secured.url}/api/terminals/{pty_id}",
                            headers=bearer(tokens[name])).status_code == 404
    # Nor can he open one in alice's session (he cannot see it); without the grant either: the
    # session's existence is not revealed by a 403.
    assert _open(secured, tokens["bob"], sid).status_code == 404
    assert _open(secured, tokens["carol"], sid).status_code == 404
    # Carol, without the grant, is told so before anything else.
    assert _refused(secured, pty_id, bearer(tokens["carol"])).status_code == 403
    # No credential: 401, as on every route.
    assert _refused(secured, pty_id, {}).status_code == 401
    with _attach(secured, pty_id, bearer(tokens["alice"])) as ws:
        ws.send("echo still-mine\r")
        _read_until(ws, "still-mine\r\n")
    ended = httpx.delete(f"{secured.url}/api/terminals/{pty_id}", headers=bearer(tokens["alice"]))
    assert ended.status_code == 200, ended.text
    assert _refused(secured, pty_id, bearer(tokens["alice"])).status_code == 404


def test_a_websocket_from_another_origin_is_refused(
        secured: RelayProcess, tokens: dict[str, str], project: Path) -> None:
    sid = _session(secured, tokens["alice"], project)
    pty_id = _open(secured, tokens["alice"], sid).json()["id"]
    refused = _refused(secured, pty_id, {**bearer(tokens["alice"]),
                                         "Origin": "http://evil.example"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "cross_origin"
    own = f"http://127.0.0.1:{secured.port}"
    with _attach(secured, pty_id, {**bearer(tokens["alice"]), "Origin": own}) as ws:
        ws.send("echo same-origin\r")
        _read_until(ws, "same-origin\r\n")


def test_a_bad_id_or_cursor_is_a_400_before_anything_opens(
        secured: RelayProcess, tokens: dict[str, str]) -> None:
    alice = bearer(tokens["alice"])
    for url in (f"ws://127.0.0.1:{secured.port}/api/terminals/ses_notaterminal/connect",
                f"ws://127.0.0.1:{secured.port}/api/terminals/pty_x/connect?cursor=abc",
                f"ws://127.0.0.1:{secured.port}/api/terminals/pty_x/connect?cursor=-2"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=alice, open_timeout=20).close()
        answer = refused.value.response
        assert answer.status_code == 400, (url, answer.status_code)
        assert b'"bad_request"' in bytes(answer.body or b""), url
    resized = httpx.put(f"{secured.url}/api/terminals/pty_x/size", headers=alice,
                        json={"rows": 0, "cols": 80})
    assert resized.status_code == 422, resized.text


def test_input_is_bounded_in_size_and_rate(
        secured: RelayProcess, tokens: dict[str, str], project: Path) -> None:
    sid = _session(secured, tokens["alice"], project)
    pty_id = _open(secured, tokens["alice"], sid).json()["id"]
    with _attach(secured, pty_id, bearer(tokens["alice"])) as ws:
        ws.send("x" * (MAX_INPUT + 1))
        closed = _closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009
    assert f"{MAX_INPUT}-byte limit" in closed.rcvd.reason
    with _attach(secured, pty_id, bearer(tokens["alice"])) as ws:
        for _ in range(INPUTS_PER_SECOND * 3):
            try:
                ws.send(":")
            except ConnectionClosed:
                break
        closed = _closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert f"over {INPUTS_PER_SECOND} messages per second" in closed.rcvd.reason
    # A bound broken ends the connection, not the shell: it can be attached again.
    with _attach(secured, pty_id, bearer(tokens["alice"]), cursor=-1) as ws:
        ws.send("echo alive\r")
        _read_until(ws, "alive\r\n")


def test_revoking_the_token_or_logging_out_closes_the_terminal(
        secured: RelayProcess, tokens: dict[str, str], project: Path,
        opencode: EmbeddedOpencode) -> None:
    dave = make_token(secured, "dave", terminal=True)
    sid = _session(secured, dave, project)
    pty_id = _open(secured, dave, sid).json()["id"]
    with _attach(secured, pty_id, bearer(dave)) as ws:
        ws.send("echo before-revoke\r")
        _read_until(ws, "before-revoke\r\n")
        done = relay_cli(secured, "token", "revoke", token_id(secured, "dave"))
        assert done.returncode == 0, done.stderr
        closed = _closed(ws, timeout=10)
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert "ended" in closed.rcvd.reason
    # Its shell is ended too.
    assert httpx.get(f"{opencode.url}/pty/{pty_id}").status_code == 404

    # A browser login (cookie) ends with its logout.
    with httpx.Client(base_url=secured.url) as browser:
        assert browser.post("/api/login", json={"token": tokens["bob"]}).status_code == 200
        cookie = f"ocr_session={browser.cookies['ocr_session']}"
        sid = browser.post("/api/sessions", json={"directory": str(project)}).json()["id"]
        pty_id = browser.post(f"/api/sessions/{sid}/terminal").json()["id"]
        origin = {"Origin": secured.url}
        with _attach(secured, pty_id, {"Cookie": cookie, **origin}) as ws:
            ws.send("echo logged-in\r")
            _read_until(ws, "logged-in\r\n")
            assert browser.post("/api/logout", headers=origin).status_code == 200
            closed = _closed(ws, timeout=10)
        assert closed.rcvd is not None and closed.rcvd.code == 1008
        assert _refused(secured, pty_id, {"Cookie": cookie, **origin}).status_code == 401
