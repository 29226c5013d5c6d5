"""Pickers (agents, providers) and health."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ..relay import Relay
from .deps import get_relay

router = APIRouter(prefix="/api")


@router.get("/agents")
async def agents(directory: str | None = Query(None, max_length=4096),
                 relay: Relay = Depends(get_relay)) -> Any:
    found = await relay.upstream.agents(directory or relay.settings.default_directory)
    return {"agents": found}


@router.get("/providers")
async def providers(directory: str | None = Query(None, max_length=4096),
                    relay: Relay = Depends(get_relay)) -> Any:
    found = await relay.upstream.providers(directory or relay.settings.default_directory)
    return {"providers": found.get("providers", []), "default": found.get("default", {})}


async def _check(probe: Any) -> dict[str, Any]:
    try:
        result = await asyncio.wait_for(probe, 5.0)
    except Exception as exc:  # any failure means "not reachable" here
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, **(result if isinstance(result, dict) else {})}


@router.get("/health")
async def health(relay: Relay = Depends(get_relay)) -> JSONResponse:
    opencode, redis = await asyncio.gather(_check(relay.upstream.health()),
                                           _check(relay.redis.ping()))
    opencode.pop("healthy", None)
    # "standby": another replica holds the ingest lease and this one serves from Redis.
    opencode["events"] = relay.ingestor.state
    ok = opencode["ok"] and redis["ok"]
    body = {"status": "ok" if ok else "unavailable", "opencode": opencode, "redis": redis}
    return JSONResponse(body, status_code=200 if ok else 503)
