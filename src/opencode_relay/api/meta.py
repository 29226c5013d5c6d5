"""Pickers (agents, providers) and health."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ..relay import Relay
from ..session_service import Upstream
from ..store import connect
from .deps import get_relay
from .models import Directory
from .schemas import GATED, Agents, ErrorBody, Health, Providers, Upstreams, errors, ok

router = APIRouter(prefix="/api", responses=GATED)


@router.get("/agents", responses={**ok(Agents), **errors(400, 422)})
async def agents(directory: Directory | None = Query(None),
                 upstream: str | None = Query(None, max_length=64),
                 relay: Relay = Depends(get_relay)) -> Any:
    client = relay.sessions.upstream_named(upstream).client
    return {"agents": await client.agents(await relay.workspace.resolve(directory))}


@router.get("/providers", responses={**ok(Providers), **errors(400, 422)})
async def providers(directory: Directory | None = Query(None),
                    upstream: str | None = Query(None, max_length=64),
                    relay: Relay = Depends(get_relay)) -> Any:
    client = relay.sessions.upstream_named(upstream).client
    found = await client.providers(await relay.workspace.resolve(directory))
    return {"providers": found.get("providers", []), "default": found.get("default", {})}


async def _check(probe: Any) -> dict[str, Any]:
    try:
        result = await asyncio.wait_for(probe, 5.0)
    except Exception as exc:  # any failure means "not reachable" here
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, **(result if isinstance(result, dict) else {})}


async def _upstream_health(upstream: Upstream) -> dict[str, Any]:
    found = await _check(upstream.client.health())
    found.pop("healthy", None)
    # "standby": another replica holds this server's ingest lease and this one serves from Redis.
    return {"name": upstream.name, **found, "events": upstream.ingestor.state}


@router.get("/upstreams", responses=ok(Upstreams))
async def upstreams(relay: Relay = Depends(get_relay)) -> Any:
    """The opencode servers this relay fronts (names only: their addresses stay private)."""
    return {"upstreams": await asyncio.gather(*(_upstream_health(u)
                                                for u in relay.upstreams.values()))}


@router.get("/health", responses={
    **ok(Health, description="Redis and every opencode server are reachable"),
    503: {"model": Health | ErrorBody,
          "description": "Redis or an opencode server is unreachable (or the relay is starting)"}})
async def health(relay: Relay = Depends(get_relay)) -> JSONResponse:
    redis, *servers = await asyncio.gather(_check(connect.usable(relay.redis)),
                                           *(_upstream_health(u) for u in relay.upstreams.values()))
    ok = redis["ok"] and all(server["ok"] for server in servers)
    body = {"status": "ok" if ok else "unavailable", "opencode": servers[0],
            "upstreams": servers, "redis": redis}
    return JSONResponse(body, status_code=200 if ok else 503)
