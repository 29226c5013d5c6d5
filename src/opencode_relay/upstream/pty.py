"""opencode's pseudo-terminals: REST to create, look up, resize and end one; a WebSocket to
stream it.

Learned from opencode 1.18.33 itself: the socket carries the shell's output as text frames and,
after every (re)connect, one binary control frame `\\x00{"cursor": N}` (N: bytes of output so
far). `?cursor=N` replays the output after N (0: the whole buffer, -1: none), so a client that
remembers its cursor reattaches without gaps. Input goes as text frames. The socket closes
(1000) when the shell exits, and opencode forgets the PTY then.
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from ..errors import NotFound, UpstreamError, UpstreamUnavailable
from .client import JSON, OpencodeClient


async def create(client: OpencodeClient, cwd: str | None, title: str) -> JSON:
    """A new shell in `cwd` (opencode's default shell, as a login shell)."""
    body: JSON = {"title": title}
    if cwd:
        body["cwd"] = cwd
    created: JSON = await client.request("POST", "/pty", directory=cwd, body=body)
    return created


async def get(client: OpencodeClient, pty_id: str, directory: str | None) -> JSON | None:
    """The PTY, or None once it has exited (opencode forgets it then)."""
    try:
        found: JSON = await client.request("GET", f"/pty/{pty_id}", directory=directory)
    except UpstreamError as exc:
        if exc.status == 404:
            return None
        raise
    return found


async def resize(client: OpencodeClient, pty_id: str, directory: str | None,
                 rows: int, cols: int) -> JSON:
    resized: JSON = await client.request("PUT", f"/pty/{pty_id}", directory=directory,
                                         body={"size": {"rows": rows, "cols": cols}})
    return resized


async def remove(client: OpencodeClient, pty_id: str, directory: str | None) -> None:
    """Ends the shell; one that is gone already is fine."""
    try:
        await client.request("DELETE", f"/pty/{pty_id}", directory=directory)
    except UpstreamError as exc:
        if exc.status != 404:
            raise


def connect_url(client: OpencodeClient, pty_id: str, directory: str | None,
                cursor: int) -> str:
    base = client.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    query = {"cursor": str(cursor), **({"directory": directory} if directory else {})}
    return f"{base}/pty/{pty_id}/connect?{urlencode(query)}"


async def open_socket(client: OpencodeClient, pty_id: str, directory: str | None,
                      cursor: int, max_size: int = 4 * 1024 * 1024) -> ClientConnection:
    """The PTY's WebSocket, authenticated like every other call to opencode."""
    headers = {}
    if client.password:
        pair = base64.b64encode(f"opencode:{client.password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    try:
        # No compression: keystrokes are a few bytes, and deflate only adds latency.
        return await connect(connect_url(client, pty_id, directory, cursor),
                             additional_headers=headers, compression=None, max_size=max_size,
                             open_timeout=10, ping_interval=20, ping_timeout=20)
    except InvalidStatus as exc:
        if exc.response.status_code == 404:
            raise NotFound("terminal", pty_id) from exc
        raise UpstreamError(exc.response.status_code,
                            "opencode refused to connect the terminal") from exc
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise UpstreamUnavailable(f"opencode server {client.name!r} is unreachable: "
                                  f"{type(exc).__name__}") from exc
