"""opencode's REST API, as the relay uses it (httpx, basic auth when a password is set)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx
from httpx_sse import aconnect_sse

from ..errors import UpstreamError, UpstreamUnavailable
from .event_stream import EventFrames, decoded, open_event_stream

JSON = dict[str, Any]
T = TypeVar("T")
# opencode sends heartbeats on its event stream; a minute of silence means it is gone.
_STREAM_SILENCE_SECONDS = 60.0
logger = logging.getLogger("opencode_relay.upstream")

__all__ = ["OpencodeClient", "UpstreamError", "UpstreamUnavailable"]


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
        for key in ("message", "error", "name"):
            value = body.get(key)
            if isinstance(value, str):
                return value
    return json.dumps(body)[:300]


class OpencodeClient:
    def __init__(self, base_url: str, password: str | None = None, timeout: float = 30.0,
                 name: str = "default",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """`transport` replaces the network (tests stand in for opencode with a MockTransport)."""
        auth = httpx.BasicAuth("opencode", password) if password else None
        self.base_url = base_url
        self.password = password  # for the connections httpx does not make (upstream/pty.py)
        # Errors name the server, never its URL: they reach clients, and a URL may hold secrets.
        self.name = name
        self._http = httpx.AsyncClient(
            base_url=base_url, auth=auth, transport=transport,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self._transport = transport
        self._stream_http = httpx.AsyncClient(
            base_url=base_url, auth=auth, transport=transport,
            timeout=httpx.Timeout(_STREAM_SILENCE_SECONDS, connect=5.0))

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._stream_http.aclose()

    async def request(self, method: str, path: str, *, directory: str | None = None,
                      params: dict[str, Any] | None = None, body: Any = None,
                      timeout: float | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if directory:
            query["directory"] = directory
        try:
            response = await self._http.request(
                method, path, params=query, json=body,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise UpstreamUnavailable(f"opencode server {self.name!r} is unreachable: "
                                      f"{type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, _message_of(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(502, "opencode answered with something that is not JSON") from exc

    async def _reply(self, shape: type[T], method: str, path: str, *,
                     directory: str | None = None, body: Any = None,
                     params: dict[str, Any] | None = None, timeout: float | None = None) -> T:
        """`request`, its JSON taken to have `shape`: opencode's replies are trusted, not
        validated (the shapes are those of its API; an empty reply is still None)."""
        return cast(T, await self.request(method, path, directory=directory, params=params,
                                          body=body, timeout=timeout))

    # ----- reads -------------------------------------------------------------------------
    async def health(self) -> JSON:
        return await self._reply(JSON, "GET", "/global/health", timeout=5.0)

    async def list_all_sessions(self) -> list[JSON]:
        """Sessions of every project (opencode's cross-project listing, archived included)."""
        found: dict[str, JSON] = {}
        for archived in ("false", "true"):
            page = await self.request("GET", "/experimental/session",
                                      params={"archived": archived, "limit": 100000})
            for session in page or []:
                found[session["id"]] = session
        return list(found.values())

    async def get_session(self, sid: str, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "GET", f"/session/{sid}", directory=directory)

    async def messages(self, sid: str, directory: str | None = None) -> list[JSON]:
        return await self._reply(list[JSON], "GET", f"/session/{sid}/message", directory=directory)

    async def todos(self, sid: str, directory: str | None = None) -> list[JSON]:
        return await self._reply(list[JSON], "GET", f"/session/{sid}/todo", directory=directory)

    async def diff(self, sid: str, directory: str | None = None) -> list[JSON]:
        return await self._reply(list[JSON], "GET", f"/session/{sid}/diff", directory=directory)

    async def vcs(self, directory: str | None = None) -> JSON:
        """`{branch, default_branch}`; both null where the directory is not a git repository."""
        return await self._reply(JSON, "GET", "/vcs", directory=directory)

    async def vcs_status(self, directory: str | None = None) -> list[JSON]:
        """The working tree's changed files, untracked ones included: `{file, status,
        additions, deletions}` (empty outside a git repository)."""
        return await self._reply(list[JSON], "GET", "/vcs/status", directory=directory)

    async def vcs_diff(self, directory: str | None = None) -> list[JSON]:
        """The working tree against HEAD, one `{file, patch, status, additions, deletions}` per
        changed file."""
        return await self.request("GET", "/vcs/diff", directory=directory,
                                  params={"mode": "git"}) or []

    async def statuses(self, directory: str | None = None) -> dict[str, JSON]:
        return await self.request("GET", "/session/status", directory=directory) or {}

    async def sync_history(self, after: dict[str, int]) -> list[JSON]:
        """opencode's durable events, `{id, aggregate_id, seq, type, data}`, oldest first per
        session: those after `after[sid]` for each session named, every one of any session not
        named (`POST /sync/history`; one store for the whole server, whatever the directory)."""
        return await self.request("POST", "/sync/history", body=after) or []

    async def pending_permissions(self, directory: str | None = None) -> list[JSON]:
        return await self.request("GET", "/permission", directory=directory) or []

    async def pending_questions(self, directory: str | None = None) -> list[JSON]:
        return await self.request("GET", "/question", directory=directory) or []

    async def agents(self, directory: str | None = None) -> list[JSON]:
        return await self._reply(list[JSON], "GET", "/agent", directory=directory)

    async def providers(self, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "GET", "/config/providers", directory=directory)

    async def provider_catalog(self, directory: str | None = None) -> JSON:
        """Every provider opencode knows, `{all, default, connected}` (GET /provider)."""
        return await self._reply(JSON, "GET", "/provider", directory=directory)

    async def provider_auth_methods(self, directory: str | None = None) -> dict[str, list[JSON]]:
        return await self._reply(dict[str, list[JSON]], "GET", "/provider/auth",
                                 directory=directory)

    async def set_provider_key(self, provider_id: str, key: str) -> Any:
        """Stores an API key in opencode's auth store (global to that opencode server)."""
        return await self.request("PUT", f"/auth/{quote(provider_id, safe='')}",
                                  body={"type": "api", "key": key})

    async def projects(self, directory: str | None = None) -> list[JSON]:
        """The projects opencode has opened (`GET /project`): id, worktree, vcs, name…"""
        return await self.request("GET", "/project", directory=directory) or []

    async def commands(self, directory: str | None = None) -> list[JSON]:
        return await self._reply(list[JSON], "GET", "/command", directory=directory)

    async def find_files(self, query: str, directory: str | None = None,
                         limit: int = 50) -> list[str]:
        found = await self.request("GET", "/find/file", directory=directory,
                                   params={"query": query, "dirs": "false", "limit": limit})
        return [str(path) for path in found or []]

    async def list_folder(self, path: str, directory: str | None = None) -> list[JSON]:
        """One folder of the directory, not recursive (GET /file); `""` is the directory."""
        return await self.request("GET", "/file", directory=directory, params={"path": path}) or []

    async def read_file(self, path: str, directory: str | None = None) -> JSON:
        """A file's content: `{"type": "text", "content"}` or, for binary files,
        `{"type": "binary", "content": <base64>, "encoding": "base64", "mimeType"}`."""
        return await self._reply(JSON, "GET", "/file/content", directory=directory,
                                 params={"path": path})

    # ----- actions -----------------------------------------------------------------------
    async def create_session(self, body: JSON, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "POST", "/session", directory=directory, body=body)

    async def update_session(self, sid: str, body: JSON, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "PATCH", f"/session/{sid}", directory=directory, body=body)

    async def delete_session(self, sid: str, directory: str | None = None) -> Any:
        return await self.request("DELETE", f"/session/{sid}", directory=directory)

    async def abort(self, sid: str, directory: str | None = None) -> Any:
        return await self.request("POST", f"/session/{sid}/abort", directory=directory)

    async def prompt(self, sid: str, body: JSON, directory: str | None = None,
                     timeout: float | None = None) -> JSON:
        return await self._reply(JSON, "POST", f"/session/{sid}/message", directory=directory,
                                 body=body, timeout=timeout)

    async def prompt_async(self, sid: str, body: JSON, directory: str | None = None) -> Any:
        return await self.request("POST", f"/session/{sid}/prompt_async", directory=directory,
                                  body=body)

    async def command(self, sid: str, body: JSON, directory: str | None = None,
                      timeout: float | None = None) -> JSON:
        return await self._reply(JSON, "POST", f"/session/{sid}/command", directory=directory,
                                 body=body, timeout=timeout)

    async def revert(self, sid: str, body: JSON, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "POST", f"/session/{sid}/revert", directory=directory,
                                 body=body)

    async def unrevert(self, sid: str, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "POST", f"/session/{sid}/unrevert", directory=directory)

    async def fork(self, sid: str, body: JSON, directory: str | None = None) -> JSON:
        return await self._reply(JSON, "POST", f"/session/{sid}/fork", directory=directory,
                                 body=body)

    async def summarize(self, sid: str, body: JSON, directory: str | None = None,
                        timeout: float | None = None) -> Any:
        return await self.request("POST", f"/session/{sid}/summarize", directory=directory,
                                  body=body, timeout=timeout)

    async def reply_permission(self, request_id: str, body: JSON,
                               directory: str | None = None) -> Any:
        return await self.request("POST", f"/permission/{request_id}/reply",
                                  directory=directory, body=body)

    async def reply_question(self, request_id: str, body: JSON,
                             directory: str | None = None) -> Any:
        return await self.request("POST", f"/question/{request_id}/reply",
                                  directory=directory, body=body)

    async def reject_question(self, request_id: str, directory: str | None = None) -> Any:
        return await self.request("POST", f"/question/{request_id}/reject", directory=directory)

    # ----- events ------------------------------------------------------------------------
    @asynccontextmanager
    async def global_events(self, open_timeout: float = 10.0
                            ) -> AsyncIterator[AsyncIterator[list[JSON]]]:
        """Opens `GET /global/event`; yields an iterator of batches of `{directory, project,
        payload}` events, in order: every event a socket read completed (event_stream.py).

        A server that accepts the connection but sends no headers (still starting) or goes
        silent for longer than the read timeout counts as unreachable, so the caller reconnects.
        """
        if self._transport is not None or _proxied(self.base_url):
            # A stand-in for opencode's network (tests), or a proxy from the environment
            # (HTTP_PROXY…, honoured as httpx honours it for the REST calls): through httpx.
            async with self._httpx_events(open_timeout) as batches:
                yield batches
            return
        try:
            stream = await open_event_stream(self.base_url, self.password,
                                             open_timeout=open_timeout,
                                             read_timeout=_STREAM_SILENCE_SECONDS)
        except (TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"opencode server {self.name!r} is unreachable: "
                                      f"{type(exc).__name__}") from exc
        try:
            if stream.head.status >= 400:
                raise UpstreamError(stream.head.status, _message_of(httpx.Response(
                    stream.head.status, headers=stream.head.headers, content=stream.head.body)))
            yield stream.batches()
        finally:
            stream.close()

    @asynccontextmanager
    async def _httpx_events(self, open_timeout: float) -> AsyncIterator[AsyncIterator[list[JSON]]]:
        """The same stream through httpx, for a `transport` that stands in for the network."""
        async with AsyncExitStack() as stack:
            try:
                source = await asyncio.wait_for(stack.enter_async_context(
                    aconnect_sse(self._stream_http, "GET", "/global/event")), open_timeout)
            except (TimeoutError, httpx.TransportError) as exc:
                raise UpstreamUnavailable(f"opencode server {self.name!r} is unreachable: "
                                          f"{type(exc).__name__}") from exc
            if source.response.status_code >= 400:
                await source.response.aread()
                raise UpstreamError(source.response.status_code, _message_of(source.response))
            yield _httpx_batches(source.response)


def _proxied(url: str) -> bool:
    """Whether the environment sends requests to `url` through a proxy (as httpx reads it)."""
    parts = urlsplit(url)
    return parts.scheme in getproxies() and not proxy_bypass(parts.hostname or "")


async def _httpx_batches(response: httpx.Response) -> AsyncIterator[list[JSON]]:
    kind = response.headers.get("content-type", "").partition(";")[0].strip()
    if kind != "text/event-stream":
        raise UpstreamUnavailable(f"event stream broke: opencode answered {kind or 'nothing'!r}, "
                                  "not an event stream")
    frames = EventFrames()
    try:
        async for chunk in response.aiter_bytes():
            found = frames.feed(chunk)
            if found:
                yield decoded(found)
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(f"event stream broke: {type(exc).__name__}") from exc
