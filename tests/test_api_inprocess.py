"""The API in-process: the real app and a real Redis, opencode stood in for by a MockTransport.

Fast (no processes but a private redis-server): what the relay itself decides — validation,
errors, auth, ownership, the loopback rule, Redis state after each action — is pinned here.
What opencode does is tested against the real `opencode serve` elsewhere.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from opencode_relay.app import create_app
from opencode_relay.config import Settings
from opencode_relay.launch.embedded import EmbeddedRedis, free_port
from opencode_relay.security.tokens import TokenStore
from opencode_relay.store.keys import Keys
from tests.support.fake_opencode import FakeOpencode

pytestmark = pytest.mark.unit

REMOTE = ("203.0.113.7", 40000)  # a caller on another machine
LOCAL = ("127.0.0.1", 40000)


def relay_settings(redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url, "opencode_url": "http://opencode.test",
        "key_prefix": f"inproc-{uuid.uuid4().hex[:8]}:", "ingest": False,
        "prune_interval_seconds": 0, "cookie_secure": False, **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def relay_client(settings: Settings, fake: FakeOpencode,
                       client: tuple[str, int] = LOCAL,
                       headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, transport=fake.transport())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.test",
                                     headers=headers or {}) as http:
            yield http


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The relays here take a workspace root of their own (Settings reads the environment);
    a session created without a directory goes to its `project` folder."""
    root = tmp_path / "workspace"
    (root / "project").mkdir(parents=True)
    monkeypatch.setenv("RELAY_WORKSPACE_ROOTS", str(root))
    monkeypatch.setenv("OPENCODE_DEFAULT_DIRECTORY", str(root / "project"))
    return root


@pytest.fixture()
def fake() -> FakeOpencode:
    return FakeOpencode()


async def test_session_round_trip_keeps_redis_in_step(redis_server: EmbeddedRedis,
                                                      fake: FakeOpencode) -> None:
    settings = relay_settings(redis_server.url)
    keys = Keys(settings.key_prefix)
    redis = Redis.from_url(redis_server.url)
    async with relay_client(settings, fake) as api:
        created = await api.post("/api/sessions", json={"title": "first"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        assert await redis.zscore(keys.session_list, sid) is not None
        assert (await api.get(f"/api/sessions/{sid}")).json()["session"]["title"] == "first"
        listed = (await api.get("/api/sessions")).json()["sessions"]
        assert [s["id"] for s in listed] == [sid]

        renamed = await api.patch(f"/api/sessions/{sid}", json={"title": "second"})
        assert renamed.json()["session"]["title"] == "second"
        assert (await api.get(f"/api/sessions/{sid}")).json()["session"]["title"] == "second"

        prompt = await api.post(f"/api/sessions/{sid}/prompt",
                                json={"text": "hi", "model": "scripted/m2", "agent": "plan"})
        assert prompt.status_code == 202, prompt.text
        assert fake.prompts[-1] == (sid, {"parts": [{"type": "text", "text": "hi"}],
                                          "model": {"providerID": "scripted", "modelID": "m2"},
                                          "agent": "plan"})

        assert (await api.delete(f"/api/sessions/{sid}")).json() == {"deleted": True}
        assert await redis.exists(keys.session(sid)) == 0
        assert (await api.get(f"/api/sessions/{sid}")).status_code == 404
    await redis.aclose()


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/api/sessions/not-a-session", None, 400, "bad_request"),
    ("POST", "/api/sessions/ses_x/prompt", {"text": "hi", "model": "nope/none"}, 400,
     "bad_request"),
    ("POST", "/api/sessions/ses_x/prompt", {"text": "hi", "agent": "ghost"}, 400, "bad_request"),
    ("POST", "/api/sessions/ses_x/prompt", {}, 422, "invalid_request"),
    ("PATCH", "/api/sessions/ses_x", {"title": ""}, 422, "invalid_request"),
    ("GET", "/api/events?after=yesterday", None, 400, "bad_event_id"),
    ("GET", "/api/agents?directory=relative/dir", None, 400, "bad_request"),
    ("GET", "/api/providers?directory=/etc/hostname", None, 400, "bad_request"),
    ("POST", "/api/sessions", {"directory": "/tmp/%2e%2e"}, 400, "bad_request"),
    ("GET", "/api/sessions/ses_x/requests", None, 200, None),
])
async def test_bad_input_gets_a_clear_4xx(method: str, path: str, body: object, status: int,
                                         code: str | None, redis_server: EmbeddedRedis,
                                         fake: FakeOpencode) -> None:
    async with relay_client(relay_settings(redis_server.url), fake) as api:
        sid = (await api.post("/api/sessions", json={})).json()["id"]
        response = await api.request(method, path.replace("ses_x", sid), json=body)
        assert response.status_code == status, response.text
        if code is not None:
            assert response.json()["error"]["code"] == code
            assert response.json()["error"]["message"]


async def test_remote_callers_are_refused_unless_auth_was_decided(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    async with relay_client(relay_settings(redis_server.url), fake, client=REMOTE) as api:
        refused = await api.get("/api/sessions")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "loopback_only"
    async with relay_client(relay_settings(redis_server.url, auth=False), fake,
                            client=REMOTE) as api:
        assert (await api.get("/api/sessions")).status_code == 200


async def test_with_auth_on_others_sessions_are_unknown(redis_server: EmbeddedRedis,
                                                        fake: FakeOpencode) -> None:
    settings = relay_settings(redis_server.url, auth=True)
    redis = Redis.from_url(redis_server.url)
    tokens = TokenStore(redis, Keys(settings.key_prefix))
    _, alice = await tokens.create("alice")
    _, bob = await tokens.create("bob")
    async with relay_client(settings, fake, client=REMOTE) as anonymous:
        response = await anonymous.get("/api/sessions")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    async with relay_client(settings, fake, client=REMOTE,
                            headers={"Authorization": f"Bearer {alice}"}) as as_alice:
        sid = (await as_alice.post("/api/sessions", json={"title": "alice's"})).json()["id"]
        assert (await as_alice.get(f"/api/sessions/{sid}")).status_code == 200
    async with relay_client(settings, fake, client=REMOTE,
                            headers={"Authorization": f"Bearer {bob}"}) as as_bob:
        hidden = await as_bob.get(f"/api/sessions/{sid}")
        assert hidden.status_code == 404
        assert hidden.json() == {"error": {"code": "not_found",
                                           "message": f"session {sid!r} was not found"}}
        assert (await as_bob.get("/api/sessions")).json() == {"sessions": [], "teams": {}}
    await redis.aclose()


async def test_opencode_down_or_failing_is_a_502_or_503_that_says_so(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    async with relay_client(relay_settings(redis_server.url), fake) as api:
        fake.down = True
        down = await api.post("/api/sessions", json={})
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "opencode_unavailable"
        assert "opencode" in down.json()["error"]["message"]
        fake.down, fake.broken = False, True
        broken = await api.post("/api/sessions", json={})
        assert broken.status_code == 502
        assert broken.json()["error"]["message"] == "opencode answered 500: it broke"


async def test_redis_down_is_a_503_that_says_so(fake: FakeOpencode) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with relay_client(relay_settings(closed), fake) as api:
        response = await api.get("/api/sessions")
        assert response.status_code == 503
        assert response.json()["error"] == {"code": "redis_unavailable",
                                             "message": "Redis is unreachable"}


async def test_an_oversized_body_is_refused_before_any_work(redis_server: EmbeddedRedis,
                                                           fake: FakeOpencode) -> None:
    settings = relay_settings(redis_server.url, max_body_bytes=1000)
    async with relay_client(settings, fake) as api:
        response = await api.post("/api/sessions", json={"title": "x" * 2000})
        assert response.status_code == 413
        assert fake.calls.count("POST /session") == 0


async def test_projects_show_roots_opencode_projects_under_them_and_only_own_sessions(
        redis_server: EmbeddedRedis, fake: FakeOpencode, workspace: Path) -> None:
    for name in ("alpha", "beta", "shared"):
        (workspace / name).mkdir()
    fake.projects.append({"id": "p1", "worktree": str(workspace / "shared"), "vcs": "git",
                          "time": {"created": 1}, "sandboxes": []})
    fake.projects.append({"id": "p2", "worktree": "/usr", "time": {"created": 1},
                          "sandboxes": []})  # another folder opencode knows, outside the roots
    settings = relay_settings(redis_server.url, auth=True)
    redis = Redis.from_url(redis_server.url)
    tokens = TokenStore(redis, Keys(settings.key_prefix))
    _, alice = await tokens.create("alice")
    _, bob = await tokens.create("bob")
    _, admin = await tokens.create("root", admin=True)

    async def listed(token: str, directory: str | None = None) -> dict[str, Any]:
        async with relay_client(settings, fake, client=REMOTE,
                                headers={"Authorization": f"Bearer {token}"}) as api:
            if directory is not None:
                created = await api.post("/api/sessions", json={"directory": directory})
                assert created.status_code == 200, created.text
                assert created.json()["directory"] == directory
            response = await api.get("/api/projects")
            assert response.status_code == 200, response.text
            return {p["directory"]: p for p in response.json()["projects"]} | {
                "": response.json()}

    mine = await listed(alice, str(workspace / "alpha"))
    theirs = await listed(bob, str(workspace / "beta"))
    everything = await listed(admin)
    assert mine[""]["roots"] == [str(workspace)]
    assert mine[""]["default"] == str(workspace / "project")
    assert str(workspace / "beta") not in mine and str(workspace / "alpha") not in theirs
    assert mine[str(workspace / "alpha")]["sessions"] == 1
    assert mine[str(workspace / "alpha")]["sources"] == ["sessions"]
    for seen in (mine, theirs, everything):
        assert seen[str(workspace)]["root"] is True
        assert seen[str(workspace / "project")]["sources"] == ["default"]
        shared = seen[str(workspace / "shared")]
        assert (shared["id"], shared["vcs"], shared["allowed"]) == ("p1", "git", True)
        assert "/" not in seen and "/usr" not in seen  # opencode's, outside the roots
    assert everything[str(workspace / "alpha")]["sessions"] == 1
    assert everything[str(workspace / "beta")]["sessions"] == 1
    await redis.aclose()


@pytest.mark.parametrize("make, reason", [
    (lambda root, out: "/nonexistent", "outside the workspace roots"),
    (lambda root, out: str(out), "outside the workspace roots"),
    (lambda root, out: str(root / "missing"), "does not exist"),
    (lambda root, out: str(root / "file.txt"), "is a file"),
    (lambda root, out: str(root / "escape"), "outside the workspace roots"),  # symlink out
    (lambda root, out: str(root / "escape" / "inner"), "outside the workspace roots"),
    (lambda root, out: f"{root}/../{out.name}", "outside the workspace roots"),
    (lambda root, out: f"{root}/project/../../{out.name}/inner", "outside the workspace roots"),
    (lambda root, out: f"{root}/%2e%2e/{out.name}", "directory"),  # no '%' at all
    (lambda root, out: f"{root}/..%2F{out.name}", "directory"),
    (lambda root, out: "relative/dir", "directory"),
])
async def test_a_new_session_directory_must_exist_under_a_root(
        make: Any, reason: str, redis_server: EmbeddedRedis, fake: FakeOpencode,
        workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (workspace / "file.txt").write_text("not a folder")
    (workspace / "escape").symlink_to(outside)
    directory = make(workspace, outside)
    async with relay_client(relay_settings(redis_server.url), fake) as api:
        refused = await api.post("/api/sessions", json={"directory": directory})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "bad_request"
        assert reason in refused.json()["error"]["message"]
        # The same rule for the pickers' `directory`, URL-encoded in the query string (so a
        # '%2F..' arrives as '/..', and '%252e' as '%2e').
        for picker in ("agents", "providers", "commands"):
            answer = await api.get(f"/api/{picker}?directory={quote(directory, safe='')}")
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "bad_request"
    assert not fake.sessions  # opencode saw none of it
    assert not {"GET /agent", "GET /config/providers", "GET /command"} & set(fake.calls)


async def test_a_directory_through_a_symlink_inside_the_root_is_resolved(
        redis_server: EmbeddedRedis, fake: FakeOpencode, workspace: Path) -> None:
    (workspace / "real").mkdir()
    (workspace / "alias").symlink_to(workspace / "real")
    async with relay_client(relay_settings(redis_server.url), fake) as api:
        created = await api.post("/api/sessions", json={"directory": f"{workspace}/alias/"})
        assert created.status_code == 200, created.text
        assert created.json()["directory"] == str(workspace / "real")  # what opencode got
        default = await api.post("/api/sessions", json={})
        assert default.json()["directory"] == str(workspace / "project")


def test_no_route_or_dependency_runs_in_the_thread_pool(redis_server: EmbeddedRedis) -> None:
    """FastAPI runs a plain `def` endpoint or dependency in its thread pool: a thread hop per
    request (14% of the relay's CPU while 1,000 SSE clients connected, when `get_relay` was
    one). Work that must leave the event loop says so with `asyncio.to_thread`."""
    from fastapi.routing import APIRoute

    app = create_app(relay_settings(redis_server.url))
    sync: list[str] = []

    def walk(dependant: Any, where: str) -> None:
        for sub in dependant.dependencies:
            if sub.call is not None and not inspect.iscoroutinefunction(sub.call):
                sync.append(f"{where}: {sub.call.__qualname__}")
            walk(sub, where)

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            included = getattr(route, "original_router", None)  # an included router (FastAPI)
            if included is not None:
                found += api_routes(included.routes)
        return found

    routes = api_routes(app.routes)
    assert len(routes) > 50  # every route of the API, as the app lists them
    for route in routes:
        if not inspect.iscoroutinefunction(route.endpoint):
            sync.append(f"{route.path}: {route.endpoint.__qualname__}")
        walk(route.dependant, route.path)
    assert not sync, sync


async def test_the_first_requests_after_start_find_their_routes_built(
        redis_server: EmbeddedRedis, fake: FakeOpencode, monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI builds an included router's routes (their pydantic fields) at the first request
    through it, unless the relay built them at start: up to 100 ms for the first callers after
    each start or failover."""
    import fastapi.routing

    built: list[str] = []
    real = fastapi.routing.create_model_field

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(str(kwargs.get("name") or (args[0] if args else "")))
        return real(*args, **kwargs)

    async with relay_client(relay_settings(redis_server.url), fake) as api:
        monkeypatch.setattr(fastapi.routing, "create_model_field", counting)
        for path in ("/api/sessions", "/api/teams", "/api/search?q=word", "/api/health"):
            assert (await api.get(path)).status_code < 500
    assert built == []
