"""First run and providers: which model providers opencode can use, and connecting one.

opencode keeps API keys in its own auth store, global to the opencode server (every session and
every directory it serves); the relay only forwards them and never repeats a key: not in an
answer, a log line, an error or the event log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..audit import audited, note
from ..errors import Forbidden, NotFound, UpstreamError
from ..relay import Relay
from ..security.principal import current_principal
from ..store.state import JSON
from .deps import get_relay
from .models import Directory
from .schemas import GATED, errors, ok

router = APIRouter(prefix="/api/providers", responses=GATED)

# opencode's built-in provider: always "connected" (free models), but online only.
BUILT_IN = "opencode"
SCOPE = ("global: opencode keeps provider keys for the whole opencode server, every session "
         "and directory alike")

ProviderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$",
                                 description="opencode's provider id, e.g. anthropic")]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthMethod(_Closed):
    type: str = Field(description="api (a key) or oauth (only from opencode's own CLI)")
    label: str


class ProviderEntry(_Closed):
    id: str
    name: str
    connected: bool
    source: str | None = Field(description="where opencode found it: env, config, api, custom")
    env: list[str] = Field(description="environment variables opencode reads its key from")
    models: int
    methods: list[AuthMethod]
    accepts_key: bool = Field(description="PUT /api/providers/{providerID}/auth can connect it")


class ProviderSetup(_Closed):
    ready: bool = Field(description="a provider other than opencode's built-in online one is "
                                    "connected")
    connected: list[str]
    default: dict[str, str]
    scope: str
    providers: list[ProviderEntry]


class ProviderKey(_Closed):
    key: Annotated[str, StringConstraints(min_length=1, max_length=4096,
                                          pattern=r"^[\x21-\x7e]+$")] = Field(
        description="The provider's API key (printable ASCII, no spaces); never echoed back")


class KeySet(_Closed):
    provider: str
    connected: bool
    scope: str


def _entry(provider: JSON, connected: set[str], methods: list[JSON]) -> dict[str, Any]:
    kinds = [{"type": str(m.get("type") or ""), "label": str(m.get("label") or "")}
             for m in methods if isinstance(m, dict)]
    env = provider.get("env")
    models = provider.get("models")
    pid = str(provider.get("id"))
    return {"id": pid, "name": str(provider.get("name") or pid), "connected": pid in connected,
            "source": provider.get("source") if isinstance(provider.get("source"), str) else None,
            "env": [str(e) for e in env] if isinstance(env, list) else [],
            "models": len(models) if isinstance(models, dict) else 0,
            # A plain key works unless the provider asks for more (an account id, a URL…).
            "methods": kinds, "accepts_key": not methods or any(
                m.get("type") == "api" and not m.get("prompts") for m in methods)}


def _is_usable(provider: JSON) -> bool:
    return provider.get("id") != BUILT_IN or provider.get("source") in ("env", "api", "config")


@router.get("/setup", responses={**ok(ProviderSetup), **errors(400, 422)})
async def setup(directory: Directory | None = Query(None),
                upstream: str | None = Query(None, max_length=64),
                relay: Relay = Depends(get_relay)) -> Any:
    """Every provider opencode knows, whether it is connected, and how to connect it."""
    client = relay.sessions.upstream_named(upstream).client
    where = await relay.workspace.resolve(directory)
    catalog = await client.provider_catalog(where)
    methods = await client.provider_auth_methods(where)
    connected = {str(c) for c in catalog.get("connected") or []}
    providers = [p for p in catalog.get("all") or [] if isinstance(p, dict)]
    entries = [_entry(p, connected, methods.get(str(p.get("id")), []) or []) for p in providers]
    # Connected first, then by name.
    entries.sort(key=lambda e: (not e["connected"], e["name"].lower()))
    usable = any(_is_usable(p) for p in providers if p.get("id") in connected)
    return {"ready": usable, "connected": sorted(connected),
            "default": catalog.get("default") or {}, "scope": SCOPE, "providers": entries}


@router.put("/{provider_id}/auth", openapi_extra=audited("provider.key.set"),
            responses={**ok(KeySet), **errors(400, 403, 404, 422)})
async def set_key(body: ProviderKey, provider_id: ProviderId,
                  upstream: str | None = Query(None, max_length=64),
                  relay: Relay = Depends(get_relay)) -> Any:
    """Connects a provider with an API key (admins only when RELAY_AUTH is on). The key is
    stored by opencode for the whole opencode server; it is never sent back."""
    note(target=provider_id)  # never the key
    principal = current_principal()
    if relay.settings.auth_enabled and (principal is None or not principal.admin):
        raise Forbidden("only an admin may set provider keys")
    client = relay.sessions.upstream_named(upstream).client
    catalog = await client.provider_catalog(relay.workspace.default)
    known = {str(p.get("id")) for p in catalog.get("all") or [] if isinstance(p, dict)}
    if provider_id not in known:
        raise NotFound("provider", provider_id)
    try:
        await client.set_provider_key(provider_id, body.key)
    except UpstreamError as exc:  # whatever opencode says, the key is not repeated
        raise UpstreamError(exc.status, exc.message.replace(body.key, "[key]")) from None
    return {"provider": provider_id, "connected": True, "scope": SCOPE}
