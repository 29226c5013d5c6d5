"""The relay's parts, wired together once, and the session look-ups the routes share."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from .api.errors import bad_request, not_found
from .config import Settings
from .fanout.hub import Hub
from .ingest.ingestor import Ingestor
from .ingest.leader import Lease
from .ingest.snapshot import fetch_snapshot, stage_snapshot
from .security.access import Access
from .store.keys import Keys
from .store.log import EventId, EventLog
from .store.state import JSON, MessageRecord, StateStore
from .upstream.client import OpencodeClient, UpstreamError

logger = logging.getLogger("opencode_relay")

_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def check_id(kind: str, prefix: str, value: str) -> str:
    if not _ID.match(value) or not value.startswith(prefix):
        raise bad_request(f"{value[:60]!r} is not a {kind} id (expected '{prefix}…')")
    return value


@dataclass
class Upstream:
    """One opencode server: its client, and the ingestor that reads its events under a lease."""

    name: str
    client: OpencodeClient
    ingestor: Ingestor
    lease: Lease


@dataclass(frozen=True)
class SessionTarget:
    upstream: Upstream
    info: JSON
    directory: str | None

    @property
    def client(self) -> OpencodeClient:
        return self.upstream.client


@dataclass
class Relay:
    settings: Settings
    redis: Redis
    upstreams: dict[str, Upstream]  # in configured order; the first is the default
    keys: Keys
    store: StateStore
    log: EventLog
    hub: Hub
    access: Access
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _catalogs: dict[tuple[str, str | None], tuple[float, set[str], set[str]]] = field(
        default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> "Relay":
        redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0",
                               socket_connect_timeout=3, health_check_interval=30,
                               max_connections=500)
        password = settings.opencode_password.get_secret_value() if settings.opencode_password else None
        keys = Keys(settings.key_prefix)
        store = StateStore(redis, keys)
        log = EventLog(redis, keys, settings.log_max_events, settings.session_log_max_events)
        hub = Hub(redis, keys, log, settings.client_queue_size)
        upstreams: dict[str, Upstream] = {}
        for index, (name, url) in enumerate(settings.opencode_servers):
            client = OpencodeClient(url, password, settings.upstream_timeout_seconds, name=name)
            ingestor = Ingestor(redis, client, store, log, name=name, owns_unrecorded=index == 0,
                                reconnect_initial=settings.reconnect_initial_seconds,
                                reconnect_max=settings.reconnect_max_seconds)
            upstreams[name] = Upstream(name, client, ingestor, Lease(redis, keys.ingest_leader(name)))
        access = Access(redis, keys, settings.auth_enabled)
        return cls(settings, redis, upstreams, keys, store, log, hub, access)

    @property
    def default_upstream(self) -> Upstream:
        return next(iter(self.upstreams.values()))

    async def start(self) -> None:
        await self.hub.start()
        if self.settings.ingest:
            for upstream in self.upstreams.values():
                self._tasks.append(asyncio.create_task(
                    upstream.ingestor.run_with_lease(upstream.lease)))

    async def stop(self) -> None:
        self.hub.close_all()
        # What was read from opencode is written before we go.
        await asyncio.gather(*(u.ingestor.drain() for u in self.upstreams.values()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for upstream in self.upstreams.values():
            try:
                await upstream.lease.release()
            except Exception as exc:  # shutting down anyway
                logger.warning("could not release the ingest lease: %s", exc)
        await self.hub.stop()
        for upstream in self.upstreams.values():
            await upstream.client.aclose()
        await self.redis.aclose()

    # ----- which opencode server ----------------------------------------------------------
    def upstream_named(self, name: str | None) -> Upstream:
        if name is None:
            return self.default_upstream
        if name not in self.upstreams:
            raise bad_request(f"unknown opencode server {name!r}; see GET /api/upstreams")
        return self.upstreams[name]

    async def upstream_of(self, sid: str) -> Upstream:
        """The opencode server that holds a session (the default one when none is recorded)."""
        name = (await self.store.upstream_names([sid])).get(sid)
        return self.upstreams.get(name or "", self.default_upstream)

    async def target(self, sid: str) -> "SessionTarget":
        """Where an action on a session goes: its server and directory (404 if not visible)."""
        info = await self.session(sid)
        return SessionTarget(await self.upstream_of(sid), info, info.get("directory"))

    # ----- look-ups ----------------------------------------------------------------------
    async def session(self, sid: str) -> JSON:
        """The stored session, read through from opencode when Redis lacks it.

        404 when the current principal may not see it (security/access.py)."""
        check_id("session", "ses", sid)
        stored = await self.store.get_session(sid)
        await self.access.require(sid)
        if stored is not None:
            return stored
        upstream, info = await self._fetch_upstream_session(sid)
        snap = await fetch_snapshot(upstream.client, info)
        async with self.redis.pipeline(transaction=True) as pipe:
            await stage_snapshot(self.store, pipe, snap, upstream.name)
            await pipe.execute()
        return info

    async def _fetch_upstream_session(self, sid: str) -> tuple[Upstream, JSON]:
        directories = [None]
        if self.settings.default_directory:
            directories.append(self.settings.default_directory)
        for upstream in self.upstreams.values():
            for directory in directories:
                try:
                    return upstream, await upstream.client.get_session(sid, directory)
                except UpstreamError as exc:
                    if exc.status not in (400, 404):
                        raise
        raise not_found("session", sid)

    async def session_of_message(self, mid: str) -> str:
        check_id("message", "msg", mid)
        sid = await self.store.session_of_message(mid)
        if sid is None or not await self.access.may_see_current(sid):
            raise not_found("message", mid)
        return sid

    async def family(self, sid: str) -> list[str]:
        """The session and all its sub-agent sessions, depth first."""
        found, todo = [], [sid]
        while todo and len(found) < 1000:
            current = todo.pop()
            if current in found:
                continue
            found.append(current)
            todo.extend(await self.store.child_ids(current))
        return found

    async def transcript(self, sid: str) -> tuple[list[MessageRecord], EventId]:
        """The messages and the log position they reflect, read atomically."""
        cursor, records = await self.store.read_transcript(sid)
        return records, EventId.parse(cursor)

    async def check_choices(self, upstream: Upstream, body: JSON, directory: str | None) -> None:
        """Rejects an unknown agent or model up front: opencode would fail with a bare 500."""
        if "agent" not in body and "model" not in body:
            return
        cached = self._catalogs.get((upstream.name, directory))
        if cached is None or time.monotonic() - cached[0] > 30:
            providers, agents = await asyncio.gather(upstream.client.providers(directory),
                                                     upstream.client.agents(directory))
            models = {f"{p['id']}/{m}" for p in providers.get("providers", [])
                      for m in (p.get("models") or {})}
            cached = (time.monotonic(), models, {a.get("name") for a in agents})
            if len(self._catalogs) >= 256:  # directories come from clients: keep this bounded
                self._catalogs.clear()
            self._catalogs[(upstream.name, directory)] = cached
        _, models, agents = cached
        model = body.get("model")
        if model and f"{model['providerID']}/{model['modelID']}" not in models:
            raise bad_request(f"unknown model {model['providerID']}/{model['modelID']}; "
                              "see GET /api/providers")
        if body.get("agent") and body["agent"] not in agents:
            raise bad_request(f"unknown agent {body['agent']!r}; see GET /api/agents")

    async def pending_request(self, sid: str, request_id: str) -> tuple[str, JSON]:
        """A pending request of this session or of one of its sub-agent sessions."""
        for member in await self.family(sid):
            raw = await self.redis.hget(self.keys.requests(member), request_id)
            if raw is not None:
                return member, json.loads(raw)
        raise not_found("pending request", request_id)
