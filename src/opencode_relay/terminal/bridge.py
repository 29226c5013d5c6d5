"""One browser's connection to one PTY: output down as it comes, input up within bounds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..errors import RelayError, UpstreamUnavailable
from .limits import InputLimit

logger = logging.getLogger("opencode_relay.terminal")

# How a bridge ended: the browser left, the shell exited, or a reason to close the browser's
# socket with (an input bound broken, the credential ended, opencode gone).
LEFT, EXITED = "left", "exited"
Outcome = str | RelayError


class Bridge:
    def __init__(self, browser: WebSocket, upstream: ClientConnection, limit: InputLimit,
                 principal_id: str, headers: dict[str, str]) -> None:
        self.browser = browser
        self.upstream = upstream
        self.limit = limit
        self.principal_id = principal_id
        self.headers = headers  # the handshake's, to re-check its credential (service.py)
        self._ended: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def end(self, reason: RelayError) -> None:
        """Ends the bridge from outside (the credential ended, the relay stops)."""
        if not self._ended.done():
            self._ended.set_result(reason)

    async def run(self, close: Callable[[RelayError], Awaitable[None]]) -> Outcome:
        """Pumps both ways until one side ends; `close` closes the browser's socket with a
        reason. Returns how it ended."""
        down = asyncio.create_task(self._down())
        up = asyncio.create_task(self._up())
        try:
            done, _ = await asyncio.wait({down, up, self._ended},
                                         return_when=asyncio.FIRST_COMPLETED)
            outcome = next(iter(done)).result()
        except RelayError as exc:
            outcome = exc
        finally:
            for task in (down, up):
                task.cancel()
            await asyncio.gather(down, up, return_exceptions=True)
            await self.upstream.close()
        try:
            if isinstance(outcome, RelayError):
                await close(outcome)
            elif outcome == EXITED:
                await self.browser.close(1000, "the shell exited")
        except (WebSocketDisconnect, RuntimeError):
            logger.debug("the browser left before its terminal was closed")
        return outcome

    async def _down(self) -> Outcome:
        try:
            async for message in self.upstream:
                if isinstance(message, str):
                    await self.browser.send_text(message)
                else:
                    await self.browser.send_bytes(message)
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1000:
                return UpstreamUnavailable("opencode closed the terminal's connection")
        except (WebSocketDisconnect, RuntimeError):  # the browser is gone
            return LEFT
        return EXITED

    async def _up(self) -> Outcome:
        while True:
            message = await self.browser.receive()
            if message["type"] == "websocket.disconnect":
                return LEFT
            text, data = message.get("text"), message.get("bytes")
            payload: str | bytes = text if text is not None else data or b""
            self.limit.admit(len(text.encode()) if text is not None else len(payload))
            try:
                await self.upstream.send(payload)
            except ConnectionClosed:
                return EXITED
