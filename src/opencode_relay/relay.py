"""The relay's parts, built and closed in one place: `async with open_relay(settings) as relay`.

Like broadcaster's `Broadcast`, one context owns every connection and background task: Redis,
the opencode clients and their ingestors, the fan-out hub, the gate's limits, retention. It
starts them in data-flow order and stops them in reverse, so nothing outlives what it needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from redis.asyncio import Redis

from .audit import AuditLog
from .config import Settings
from .fanout.hub import Hub
from .ingest.ingestor import Ingestor
from .ingest.leader import Lease
from .ingest.retry_guard import RetryGuard
from .push import Push, build_push
from .retention import Retention
from .search.index import SearchIndex
from .security.access import Access
from .security.gate import Guard
from .security.limits import PromptLimiter, StreamSlots
from .security.sso import SingleSignOn, build_sso
from .security.tokens import TokenStore
from .session_service import SessionService, Upstream
from .shares import ShareStore
from .store import connect
from .store.keys import Keys
from .store.log import EventId, EventLog
from .store.replication import ReplicaWait
from .store.state import StateStore
from .terminal.service import Terminals
from .upstream.client import OpencodeClient
from .workspace import Workspace

logger = logging.getLogger("opencode_relay")


class Observer(Protocol):
    """Hears what the parts do (metrics.Metrics is the one in use)."""

    def on_event(self, kind: str, count: int = 1) -> None: ...  # opencode events ingested

    def on_dispatch(self, event_id: EventId) -> None: ...  # the hub fanned out a read
    # of the log; `event_id` is its oldest entry

    def on_drop(self) -> None: ...  # a too-slow SSE client was dropped

    def on_pruned(self, count: int) -> None: ...  # idle sessions left Redis


class _Unobserved:
    def on_event(self, kind: str, count: int = 1) -> None:
        pass

    def on_dispatch(self, event_id: EventId) -> None:
        pass

    def on_drop(self) -> None:
        pass

    def on_pruned(self, count: int) -> None:
        pass


@dataclass
class Relay:
    settings: Settings
    redis: Redis
    keys: Keys
    store: StateStore
    log: EventLog
    hub: Hub
    access: Access
    upstreams: dict[str, Upstream]  # in configured order; the first is the default
    sessions: SessionService
    guard: Guard
    retention: Retention
    workspace: Workspace
    terminals: Terminals
    audit: AuditLog  # who changed what (audit.py); routes declare, the middleware records
    shares: ShareStore
    retry_guards: list[RetryGuard] = field(default_factory=list)
    push: Push | None = None  # Web Push (RELAY_PUSH); None when turned off
    sso: SingleSignOn | None = None  # single sign-on (RELAY_OIDC_*); None when not configured
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.hub.start()
        self.guard.streams.start()
        self.terminals.start()
        if self.push is not None:
            await self.push.start()
        if self.settings.ingest:
            for upstream in self.upstreams.values():
                self._tasks.append(asyncio.create_task(
                    upstream.ingestor.run_with_lease(upstream.lease)))
        if self.settings.prune_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(
                self.retention.run_forever(self.settings.prune_interval_seconds)))

    async def stop(self) -> None:
        self.hub.close_all()
        await self.terminals.stop()
        # What was read from opencode is written before we go.
        await asyncio.gather(*(u.ingestor.drain() for u in self.upstreams.values()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(g.close() for g in self.retry_guards))
        if self.push is not None:
            await self.push.notifier.stop()  # sends what ingest queued, briefly
        for upstream in self.upstreams.values():
            await upstream.lease.release()  # never raises: a lease it cannot free lapses
        await self.guard.streams.stop()
        await self.hub.stop()
        for upstream in self.upstreams.values():
            await upstream.client.aclose()
        if self.sso is not None:
            await self.sso.aclose()
        await connect.close(self.redis)


def build_relay(settings: Settings, redis: Redis, observer: Observer | None = None,
                transport: httpx.AsyncBaseTransport | None = None) -> Relay:
    """Every part, connected but not started. `redis` comes from store/connect.py;
    `transport` stands in for opencode's network."""
    seen = observer or _Unobserved()
    workspace = Workspace.open(settings.workspace_root_list, settings.data_dir,
                               settings.default_directory)
    password = settings.opencode_password.get_secret_value() if settings.opencode_password else None
    keys = Keys(settings.key_prefix)
    store = StateStore(redis, keys, SearchIndex(redis, keys) if settings.search else None)
    log = EventLog(redis, keys, settings.log_max_events, settings.session_log_max_events)
    hub = Hub(redis, keys, log, settings.client_queue_size, on_drop=seen.on_drop,
              on_dispatch=seen.on_dispatch)
    log.watcher = hub  # what this process logs goes to its clients without a read back
    access = Access(redis, keys, settings.auth_enabled)
    push = build_push(settings, redis, keys, store, access) if settings.push else None
    upstreams: dict[str, Upstream] = {}
    retry_guards: list[RetryGuard] = []
    wait_replicas = settings.redis_wait_replicas
    if wait_replicas and connect.is_cluster(redis):
        # WAIT confirms one primary's writes; a batch spans the primaries of its sessions' slots
        # (store/staging.py). Waiting is for one Redis or Sentinel (README "Scaling out").
        logger.warning("RELAY_REDIS_WAIT_REPLICAS is ignored on a Redis Cluster: WAIT applies "
                       "to one Redis or a Sentinel-managed primary")
        wait_replicas = 0
    for index, (name, url) in enumerate(settings.opencode_servers):
        client = OpencodeClient(url, password, settings.upstream_timeout_seconds, name=name,
                                transport=transport)
        guard_retries = RetryGuard(client, log, settings.provider_retry_limit,
                                   on_failed=push.notifier.failed if push else None,
                                   on_stopping=push.notifier.stopping if push else None)
        ingestor = Ingestor(redis, client, store, log, name=name, owns_unrecorded=index == 0,
                            reconnect_initial=settings.reconnect_initial_seconds,
                            reconnect_max=settings.reconnect_max_seconds,
                            on_event=seen.on_event,
                            observers=[guard_retries.observe,
                                       *([push.notifier.observe] if push else [])],
                            after_commit=ReplicaWait(
                                redis, keys.ingest_replicated(name), wait_replicas,
                                settings.redis_wait_timeout_ms)
                            if wait_replicas else None)
        retry_guards.append(guard_retries)
        upstreams[name] = Upstream(name, client, ingestor, Lease(redis, keys.ingest_leader(name)))
    sessions = SessionService(redis, store, access, upstreams, workspace.default)
    tokens = TokenStore(redis, keys)
    guard = Guard(settings, tokens, access,
                  PromptLimiter(redis, keys, settings.prompts_per_minute),
                  StreamSlots(redis, keys, settings.streams_per_principal,
                              settings.stream_slot_ttl_seconds))
    retention = Retention(redis, keys, store, settings.session_idle_seconds,
                          settings.log_max_age_seconds, seen.on_pruned,
                          audit_max_age_seconds=settings.audit_max_age_seconds)
    terminals = Terminals(redis, keys, settings, sessions, guard)
    return Relay(settings, redis, keys, store, log, hub, access, upstreams, sessions, guard,
                 retention, workspace, terminals,
                 AuditLog(redis, keys, settings.audit_max_entries,
                          settings.audit_anonymous_per_minute), ShareStore(redis, keys),
                 retry_guards, push, build_sso(settings, redis, keys, tokens))


@asynccontextmanager
async def open_relay(settings: Settings, observer: Observer | None = None,
                     transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Relay]:
    """Builds and starts every part; stops and closes all of them on leaving."""
    relay = build_relay(settings, await connect.connect(settings), observer, transport)
    try:
        await relay.start()
        yield relay
    finally:
        await relay.stop()
