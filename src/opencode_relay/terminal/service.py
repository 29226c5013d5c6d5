"""Who opened which terminal, reattaching to it, and closing those whose credential ended.

A terminal is one opencode PTY, opened in a session's directory for one principal. Its record
(`Keys.terminal`) names its owner, and `Keys.session_terminal` remembers it per session and
principal, so opening the session's terminal again (a page reload) reattaches to the same shell
while it lives. Only the owner may attach, resize or end it; everyone else is told it does not
exist, and so is the owner once it may no longer drive the session (it left the session's team,
or is only a viewer there now). Open connections re-check their credential and that right every
`terminal_recheck_seconds` (a periodic check, not a Redis signal: a logout, a revoke, an expired
login and a team change all show in the same look-ups, on every replica); a connection whose
credential or right ended is closed and its shell ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..config import Settings
from ..errors import (
    NotFound,
    RelayError,
    SessionEnded,
    Stopping,
    TerminalNotGranted,
    Unauthenticated,
    UpstreamError,
    UpstreamUnavailable,
)
from ..security.access import Right
from ..security.gate import Guard, recheck
from ..security.principal import Principal, current_principal
from ..session_service import SessionService, SessionTarget
from ..store.keys import Keys
from ..store.replies import text
from ..upstream import pty
from ..upstream.client import JSON, OpencodeClient
from .bridge import EXITED, Bridge, Outcome

logger = logging.getLogger("opencode_relay.terminal")

# A record outlives its connections (reattach); it is renewed on every attach and dropped when
# the shell exits. One never attached again for this long is forgotten.
RECORD_TTL_SECONDS = 7 * 86400


@dataclass(frozen=True)
class TerminalRecord:
    id: str
    owner: str
    session: str
    upstream: str
    directory: str | None


def require_grant() -> Principal:
    principal = current_principal()
    if principal is None or not principal.may_open_terminal:
        raise TerminalNotGranted()
    return principal


class Terminals:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings, sessions: SessionService,
                 guard: Guard) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.sessions = sessions
        self.guard = guard
        self._bridges: dict[Bridge, TerminalRecord] = {}
        self._task: asyncio.Task[None] | None = None

    # ----- records ------------------------------------------------------------------------
    async def open(self, target: SessionTarget, sid: str) -> JSON:
        """The caller's live terminal of this session, or a new one in its directory."""
        principal = require_grant()
        remembered = await self.redis.get(self.keys.session_terminal(sid, principal.id))
        if remembered is not None:
            record = await self._record(text(remembered))
            if record is not None and record.owner == principal.id:
                info = await pty.get(self.client_of(record), record.id, record.directory)
                if info is not None and info.get("status") == "running":
                    await self._remember(record)
                    return info
                await self.forget(record)
        info = await pty.create(target.client, target.directory,
                                title=f"{principal.name} in {sid}")
        await self._remember(TerminalRecord(info["id"], principal.id, sid,
                                            target.upstream.name, target.directory))
        return info

    async def owned(self, pty_id: str) -> TerminalRecord:
        """The record of the caller's own terminal; NotFound for anyone else's, and for its own
        once it may no longer drive the session."""
        principal = require_grant()
        record = await self._record(pty_id)
        if record is None or record.owner != principal.id \
                or not await self._may_drive(principal, record):
            raise NotFound("terminal", pty_id)
        return record

    async def _may_drive(self, principal: Principal, record: TerminalRecord) -> bool:
        right = (await self.sessions.access.standing(principal, record.session)).right
        return right is not None and right >= Right.DRIVE

    async def resize(self, record: TerminalRecord, rows: int, cols: int) -> JSON:
        return await pty.resize(self.client_of(record), record.id, record.directory, rows, cols)

    async def close(self, record: TerminalRecord) -> None:
        """Ends the shell and forgets it; its open connections see it exit."""
        await pty.remove(self.client_of(record), record.id, record.directory)
        await self.forget(record)

    # The record (by PTY id) and the session's pointer to it lie in different hash slots: one
    # round trip, not one transaction. A pointer whose record is gone finds no terminal.
    async def forget(self, record: TerminalRecord) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.terminal(record.id))
            pipe.delete(self.keys.session_terminal(record.session, record.owner))
            await pipe.execute()

    async def _remember(self, record: TerminalRecord) -> None:
        ttl = RECORD_TTL_SECONDS
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.terminal(record.id), json.dumps(asdict(record)), ex=ttl)
            pipe.set(self.keys.session_terminal(record.session, record.owner), record.id, ex=ttl)
            await pipe.execute()

    async def _record(self, pty_id: str) -> TerminalRecord | None:
        raw = await self.redis.get(self.keys.terminal(pty_id))
        return TerminalRecord(**json.loads(raw)) if raw is not None else None

    def client_of(self, record: TerminalRecord) -> OpencodeClient:
        """The client of the opencode server that holds the terminal."""
        upstream = self.sessions.upstreams.get(record.upstream, self.sessions.default_upstream)
        return upstream.client

    # ----- live connections ---------------------------------------------------------------
    async def run(self, record: TerminalRecord, bridge: Bridge,
                  close: Callable[[RelayError], Awaitable[None]]) -> Outcome:
        """Runs one connection to its end; a shell that exited is forgotten, and one whose
        owner's credential ended is ended too."""
        self._bridges[bridge] = record
        logger.info("terminal %s attached", record.id,
                    extra={"terminal": record.id, "principal": record.owner})
        try:
            await self._remember(record)
            outcome = await bridge.run(close)
        finally:
            self._bridges.pop(bridge, None)
        ended = outcome if isinstance(outcome, str) else outcome.code
        logger.info("terminal %s detached: %s", record.id, ended,
                    extra={"terminal": record.id, "principal": record.owner, "outcome": ended})
        try:
            if outcome == EXITED:
                await self.forget(record)
            elif isinstance(outcome, SessionEnded):
                await self.close(record)
        except (RedisError, UpstreamError, UpstreamUnavailable) as exc:
            logger.warning("could not clean up terminal %s: %s", record.id, exc)
        return outcome

    async def recheck_all(self) -> None:
        """Ends every connection whose login or token ended, whose grant was withdrawn, or
        whose owner may no longer drive the session."""
        for bridge, record in list(self._bridges.items()):
            try:
                principal = await recheck(self.guard, bridge.headers)
            except Unauthenticated:
                bridge.end(SessionEnded("the login or token that opened this terminal ended"))
                continue
            if principal.id != bridge.principal_id or not principal.may_open_terminal:
                bridge.end(SessionEnded("the terminal grant was withdrawn"))
            elif not await self._may_drive(principal, record):
                bridge.end(SessionEnded("you may no longer drive this session (you left its "
                                        "team, or only view it now)"))

    @property
    def open_connections(self) -> int:
        return len(self._bridges)

    def start(self) -> None:
        self._task = asyncio.create_task(self._recheck_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for bridge in list(self._bridges):
            bridge.end(Stopping())

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.terminal_recheck_seconds)
            try:
                await self.recheck_all()
            except (RedisError, OSError) as exc:  # checked again next round
                logger.warning("could not re-check terminal credentials: %s", exc)
