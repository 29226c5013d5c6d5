"""Finding a session for a request: which one, whether the caller may see it, where it lives.

Every route that names a session goes through here, so ownership (security/access.py) and the
choice of opencode server are decided in one place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cachetools import TTLCache
from redis.asyncio import Redis

from .errors import InvalidInput, MessageIdTaken, NotFound
from .ids import check_id
from .ingest.ingestor import Ingestor
from .ingest.leader import Lease
from .ingest.snapshot import fetch_snapshot, stage_snapshot
from .security.access import Access, Right
from .store.log import EventId
from .store.staging import Staging
from .store.state import JSON, MessageRecord, StateStore
from .upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable

# How long the agents and models of one (server, directory) are trusted before being re-read.
CATALOG_SECONDS = 30.0


@dataclass
class Upstream:
    """One opencode server: its client, and the ingestor that reads its events under a lease."""

    name: str
    client: OpencodeClient
    ingestor: Ingestor
    lease: Lease


@dataclass(frozen=True)
class SessionTarget:
    """Where an action on a session goes: its server and directory."""

    upstream: Upstream
    info: JSON
    directory: str | None

    @property
    def client(self) -> OpencodeClient:
        return self.upstream.client


@dataclass(frozen=True)
class Catalog:
    """The models (`provider/model`) and agent names one opencode directory offers."""

    models: frozenset[str]
    agents: frozenset[str]
    context: dict[str, int]  # `provider/model` → its context window in tokens, where known


def read_catalog(providers: object, agents: object) -> Catalog:
    """opencode's provider and agent lists as a Catalog; entries of another shape are skipped
    (opencode's answers are trusted for content, not for shape)."""
    provider_list = providers.get("providers") if isinstance(providers, dict) else None
    models: dict[str, object] = {}
    for provider in provider_list if isinstance(provider_list, list) else []:
        if isinstance(provider, dict) and isinstance(provider.get("models"), dict):
            for name, info in provider["models"].items():
                models[f"{provider.get('id')}/{name}"] = info
    context: dict[str, int] = {}
    for name, info in models.items():
        limit = (info.get("limit") or {}).get("context") if isinstance(info, dict) else None
        if isinstance(limit, int | float) and limit > 0:
            context[name] = int(limit)
    names = frozenset(str(a["name"]) for a in (agents if isinstance(agents, list) else [])
                      if isinstance(a, dict) and a.get("name"))
    return Catalog(frozenset(models), names, context)


class SessionService:
    def __init__(self, redis: Redis, store: StateStore, access: Access,
                 upstreams: dict[str, Upstream], default_directory: str | None) -> None:
        self.redis = redis
        self.store = store
        self.access = access
        self.upstreams = upstreams  # in configured order; the first is the default
        self.default_directory = default_directory
        # Keyed by (server, directory); directories come from clients, so the cache is bounded.
        self._catalogs: TTLCache[tuple[str, str | None], Catalog] = TTLCache(
            maxsize=256, ttl=CATALOG_SECONDS)

    # ----- which opencode server ----------------------------------------------------------
    @property
    def default_upstream(self) -> Upstream:
        return next(iter(self.upstreams.values()))

    def upstream_named(self, name: str | None) -> Upstream:
        if name is None:
            return self.default_upstream
        if name not in self.upstreams:
            raise InvalidInput(f"unknown opencode server {name!r}; see GET /api/upstreams")
        return self.upstreams[name]

    async def upstream_of(self, sid: str) -> Upstream:
        """The opencode server that holds a session (the default one when none is recorded)."""
        name = (await self.store.upstream_names([sid])).get(sid)
        return self.upstreams.get(name or "", self.default_upstream)

    async def target(self, sid: str, right: Right) -> SessionTarget:
        """Where an action on a session goes: NotFound if the caller may not see it,
        RoleRefused if its team role does not give it `right` (security/access.py)."""
        info = await self.get(sid, right)
        return SessionTarget(await self.upstream_of(sid), info, info.get("directory"))

    # ----- look-ups ----------------------------------------------------------------------
    async def get(self, sid: str, right: Right = Right.READ) -> JSON:
        """The stored session, read through from opencode when Redis lacks it.

        NotFound when the current principal may not see it, RoleRefused when it may see it
        but not act with `right` on it (security/access.py)."""
        check_id("session", "ses", sid)
        stored = await self.store.get_session(sid)
        await self.access.require(sid, right)
        if stored is not None:
            return stored
        upstream, info = await self._fetch_upstream_session(sid)
        snap = await fetch_snapshot(upstream.client, info)
        async with Staging(self.redis) as stage:
            await stage_snapshot(self.store, stage, snap, upstream.name)
            await stage.commit()
        return info

    async def _fetch_upstream_session(self, sid: str) -> tuple[Upstream, JSON]:
        directories: list[str | None] = [None]
        if self.default_directory:
            directories.append(self.default_directory)
        for upstream in self.upstreams.values():
            for directory in directories:
                try:
                    return upstream, await upstream.client.get_session(sid, directory)
                except UpstreamError as exc:
                    if exc.status not in (400, 404):
                        raise
        raise NotFound("session", sid)

    async def session_of_message(self, mid: str) -> str:
        check_id("message", "msg", mid)
        sid = await self.store.session_of_message(mid)
        if sid is None or not await self.access.may_see_current(sid):
            raise NotFound("message", mid)
        return sid

    async def family(self, sid: str) -> list[str]:
        """The session and all its sub-agent sessions, depth first."""
        return await self.store.family(sid)

    async def transcript(self, sid: str) -> tuple[list[MessageRecord], EventId]:
        """The messages and the log position they reflect, read atomically."""
        cursor, records = await self.store.read_transcript(sid)
        return records, EventId.parse(cursor)

    async def usage(self, sid: str) -> JSON:
        """Tokens and cost of the session so far (kept at ingest, store/state.py) and how full
        its model's context window was after the newest assistant message."""
        target = await self.target(sid, Right.READ)
        totals, last = await self.store.read_usage(sid)
        limit = used = None
        if last is not None:
            used = int(sum(last[k] for k in ("input", "output", "reasoning", "cacheRead",
                                             "cacheWrite")))
            if last.get("providerID") and last.get("modelID"):
                limit = await self.context_limit(target, last["providerID"], last["modelID"])
        return {
            "tokens": {"input": int(totals["input"]), "output": int(totals["output"]),
                       "reasoning": int(totals["reasoning"]),
                       "cache": {"read": int(totals["cacheRead"]),
                                 "write": int(totals["cacheWrite"])}},
            "cost": round(totals["cost"], 9),
            "messages": int(totals["messages"]),
            "model": ({"providerID": last["providerID"], "modelID": last["modelID"]}
                      if last and last.get("providerID") and last.get("modelID") else None),
            "context": {"used": used, "limit": limit,
                        "percent": round(100 * used / limit, 1) if used is not None and limit
                        else None},
        }

    async def pending_request(self, sid: str, request_id: str) -> tuple[str, JSON]:
        """A pending request of this session or of one of its sub-agent sessions."""
        found = await self.store.pending_request(await self.family(sid), request_id)
        if found is None:
            raise NotFound("pending request", request_id)
        return found

    # ----- checks before an action ---------------------------------------------------------
    async def check_message_id(self, sid: str, body: JSON) -> None:
        """Rejects a new message's id (`messageID`) that a message of another session has, or
        that another session's prompt sent first: opencode fails on it with a bare 500 (its
        messages share one table). Its own session's is opencode's to take (it writes that
        message again)."""
        mid = body.get("messageID")
        if isinstance(mid, str):
            owner = await self.store.claim_message_id(mid, sid)
            if owner != sid:
                raise MessageIdTaken(f"message id {mid!r} is taken by another session; "
                                     "leave messageID out, or give a new one")

    async def check_choices(self, upstream: Upstream, body: JSON, directory: str | None) -> None:
        """Rejects an unknown agent or model up front: opencode would fail with a bare 500."""
        if "agent" not in body and "model" not in body:
            return
        catalog = await self._catalog(upstream, directory)
        model = body.get("model")
        if model and f"{model['providerID']}/{model['modelID']}" not in catalog.models:
            raise InvalidInput(f"unknown model {model['providerID']}/{model['modelID']}; "
                               "see GET /api/providers")
        if body.get("agent") and body["agent"] not in catalog.agents:
            raise InvalidInput(f"unknown agent {body['agent']!r}; see GET /api/agents")

    async def context_limit(self, target: SessionTarget, provider: str,
                            model: str) -> int | None:
        """The model's context window (opencode's `limit.context`); None when unknown or when
        opencode cannot say right now (usage is still worth showing without it)."""
        try:
            catalog = await self._catalog(target.upstream, target.directory)
        except (UpstreamError, UpstreamUnavailable):
            return None
        return catalog.context.get(f"{provider}/{model}")

    async def _catalog(self, upstream: Upstream, directory: str | None) -> Catalog:
        key = (upstream.name, directory)
        catalog = self._catalogs.get(key)
        if catalog is None:
            providers, agents = await asyncio.gather(upstream.client.providers(directory),
                                                     upstream.client.agents(directory))
            catalog = read_catalog(providers, agents)
            self._catalogs[key] = catalog
        return catalog
