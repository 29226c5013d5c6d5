"""Stops opencode's retry loop when a model provider cannot be reached.

opencode retries a failing provider call (connection refused, bad URL, no key…) up to five
times with backoff, about a minute in all, and then says only "Cannot connect to API". It
reports each retry as `session.status` `{type: "retry", attempt, message, next}`. This observer
of ingested events (it runs only on the replica that holds the ingest lease, so once) aborts the
session after `limit` retries of a provider that cannot be reached, and logs
`relay.session.failed` `{sessionID, provider, message}` to the session's stream, naming the
provider and saying what to do. Other retries (rate limits, an overloaded provider) are opencode's
to wait out: they end by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache

from .. import events as event_types
from ..store.log import EventLog, LogEntry
from ..store.staging import Staging
from ..store.state import JSON, dumps
from ..upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable

logger = logging.getLogger("opencode_relay.ingest")

# What opencode (and the fetch under it) says when the provider cannot be reached at all.
_UNREACHABLE = re.compile(r"cannot connect|unable to connect|connection refused|econnrefused|"
                          r"enotfound|getaddrinfo|fetch failed|certificate", re.IGNORECASE)


def unreachable(detail: str) -> bool:
    return _UNREACHABLE.search(detail) is not None


def failure_message(provider: str | None, detail: str, attempts: int) -> str:
    """What the person watching reads: which provider, what opencode said, what to do."""
    name = f"model provider '{provider}'" if provider else "the model provider"
    said = detail.strip() or "it failed"
    said += "" if said.endswith((".", "?", "!")) else "."
    return (f"The {name} could not be used: {said} The relay stopped retrying after "
            f"{attempts} attempt{'s' if attempts != 1 else ''}. Connect the provider (an API key "
            f"under Providers, or its environment variable such as ANTHROPIC_API_KEY) or check "
            f"its base URL in opencode's config, then send the prompt again.")


class RetryGuard:
    """An ingest observer: `observe(event)` for every ingested `{directory, payload}` event."""

    def __init__(self, upstream: OpencodeClient, log: EventLog, limit: int,
                 on_failed: Callable[[str, str], None] | None = None,
                 on_stopping: Callable[[str], None] | None = None) -> None:
        self.upstream = upstream
        self.log = log
        self.limit = limit  # retries allowed before the relay aborts; 0 = never abort
        # Hears (session id, message) of each session it stopped (push/: an error notification).
        self.on_failed = on_failed or (lambda _sid, _message: None)
        # Told before the abort is sent: opencode can report the session idle before it answers.
        self.on_stopping = on_stopping or (lambda _sid: None)
        self._providers: LRUCache[str, str] = LRUCache(maxsize=10_000)  # session → provider
        self._stopping: set[str] = set()  # sessions being aborted (until they are idle)
        self._tasks: set[asyncio.Task[None]] = set()

    def observe(self, event: JSON) -> None:
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return
        props = payload.get("properties")
        if not isinstance(props, dict):
            return
        kind = payload.get("type")
        if kind == event_types.MESSAGE_UPDATED:
            info = props.get("info")
            if isinstance(info, dict) and info.get("role") == "assistant" and isinstance(
                    info.get("providerID"), str) and isinstance(info.get("sessionID"), str):
                self._providers[info["sessionID"]] = info["providerID"]
        elif kind == event_types.SESSION_IDLE:
            self._stopping.discard(str(props.get("sessionID")))
        elif kind == event_types.SESSION_STATUS_CHANGED:
            sid, status = props.get("sessionID"), props.get("status")
            if not isinstance(sid, str) or not isinstance(status, dict):
                return
            if status.get("type") == "idle":
                self._stopping.discard(sid)
            elif status.get("type") == "retry":
                attempt = status.get("attempt")
                detail = str(status.get("message") or "")
                if (self.limit > 0 and isinstance(attempt, int) and attempt >= self.limit
                        and unreachable(detail) and sid not in self._stopping):
                    self._stopping.add(sid)
                    self.on_stopping(sid)
                    directory = event.get("directory")
                    task = asyncio.create_task(self._stop(
                        sid, directory if isinstance(directory, str) else None,
                        detail, attempt))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _stop(self, sid: str, directory: str | None, detail: str, attempt: int) -> None:
        provider = self._providers.get(sid)
        try:
            await self.upstream.abort(sid, directory)
        except (UpstreamError, UpstreamUnavailable) as exc:
            logger.warning("could not abort session %s after provider retries: %s", sid, exc)
            self._stopping.discard(sid)
            return
        message = failure_message(provider, detail, attempt)
        notice: dict[str, Any] = {
            "type": event_types.RELAY_SESSION_FAILED,
            "properties": {"sessionID": sid, "provider": provider, "message": message}}
        self.on_failed(sid, message)
        logger.info("session %s: provider %s unreachable after %d attempt(s); aborted",
                    sid, provider, attempt)
        try:
            async with Staging(self.log.redis) as stage:
                await self.log.commit(stage, [LogEntry(None, dumps(notice), (sid,))],
                                      self.upstream.name)
        except Exception as exc:  # the abort happened; only the notice is lost
            logger.warning("could not log the provider failure of %s: %s", sid, exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
