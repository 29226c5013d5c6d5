"""Teams and roles in-process: the real app and Redis, opencode stood in for (FakeOpencode).

What each role may do with a team's session, route by route (every session route of the OpenAPI
document is classified here, so a new route must be too); team management; the team binding
of new sessions (server, root); the audit log's team field. Streams, share links and terminals
against the real stack: tests/test_teams.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from opencode_relay.app import create_app
from opencode_relay.config import Settings
from opencode_relay.errors import InvalidInput, NotFound, RoleRefused
from opencode_relay.groups import GroupHolders
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.security.access import Access, Right
from opencode_relay.security.principal import Principal, reset_principal, set_principal
from opencode_relay.security.tokens import TokenStore
from opencode_relay.store.keys import Keys
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from opencode_relay.teams import Teams
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import REMOTE, relay_settings
from tests.test_unit_core import session_info

pytestmark = pytest.mark.unit

READ, DRIVE, MANAGE = "read", "drive", "manage"
# What each session route needs (the table in docs/architecture.md), written out here on its
# own: the test fails for a route the relay guards differently, or one not listed.
NEEDS: dict[tuple[str, str], str] = {
    ("GET", "/api/sessions/{sid}"): READ,
    ("GET", "/api/sessions/{sid}/messages"): READ,
    ("GET", "/api/sessions/{sid}/status"): READ,
    ("GET", "/api/sessions/{sid}/diff"): READ,
    ("GET", "/api/sessions/{sid}/todos"): READ,
    ("GET", "/api/sessions/{sid}/children"): READ,
    ("GET", "/api/sessions/{sid}/requests"): READ,
    ("GET", "/api/sessions/{sid}/events"): READ,
    ("GET", "/api/sessions/{sid}/files"): READ,
    ("GET", "/api/sessions/{sid}/changes"): READ,
    ("GET", "/api/sessions/{sid}/changes/diff"): READ,
    ("GET", "/api/sessions/{sid}/tree"): READ,
    ("GET", "/api/sessions/{sid}/file"): READ,
    ("GET", "/api/sessions/{sid}/export"): READ,
    ("POST", "/api/sessions/{sid}/messages"): DRIVE,
    ("POST", "/api/sessions/{sid}/prompt"): DRIVE,
    ("POST", "/api/sessions/{sid}/abort"): DRIVE,
    ("POST", "/api/sessions/{sid}/command"): DRIVE,
    ("POST", "/api/sessions/{sid}/revert"): DRIVE,
    ("POST", "/api/sessions/{sid}/unrevert"): DRIVE,
    ("POST", "/api/sessions/{sid}/fork"): DRIVE,
    ("POST", "/api/sessions/{sid}/summarize"): DRIVE,
    ("POST", "/api/sessions/{sid}/terminal"): DRIVE,
    ("PATCH", "/api/sessions/{sid}"): MANAGE,
    ("DELETE", "/api/sessions/{sid}"): MANAGE,
    ("POST", "/api/sessions/{sid}/permissions/{request_id}"): MANAGE,
    ("POST", "/api/sessions/{sid}/questions/{request_id}"): MANAGE,
    ("POST", "/api/sessions/{sid}/questions/{request_id}/reject"): MANAGE,
    ("POST", "/api/sessions/{sid}/share"): MANAGE,
    ("GET", "/api/sessions/{sid}/shares"): MANAGE,
    ("DELETE", "/api/sessions/{sid}/shares/{share_id}"): MANAGE,
}
RANK = {None: 0, "viewer": 1, "member": 2, "admin": 3}
NEEDED_RANK = {READ: 1, DRIVE: 2, MANAGE: 3}
_BODIES = {"/messages": {"text": "hi"}, "/prompt": {"text": "hi"},
           "/command": {"command": "nothing", "arguments": ""},
           "/revert": {"messageID": "msg_notreal"}, "/permissions/": {"reply": "once"},
           "/questions/": {"answers": [["a"]]}, "/share": {}, "/fork": {}}
_QUERIES = {"/changes/diff": {"path": "a.txt"}, "/file": {"path": "a.txt"}}


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "workspace"
    for folder in ("project", "alpha-root", "alpha-root/app", "elsewhere"):
        (root / folder).mkdir(parents=True)
    monkeypatch.setenv("RELAY_WORKSPACE_ROOTS", str(root))
    monkeypatch.setenv("OPENCODE_DEFAULT_DIRECTORY", str(root / "project"))
    return root


class World:
    """An auth-on relay with team alpha (owner and member: member, viewer, boss: admin), team
    beta (outsider: member), and root, a relay admin; `call(who, …)` as each of them."""

    def __init__(self, settings: Settings, app: Any, redis: Redis,
                 tokens: dict[str, str], ids: dict[str, str]) -> None:
        self.settings = settings
        self.app = app
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.teams = Teams(redis, self.keys)
        self.tokens = tokens
        self.ids = ids

    def client(self, who: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=REMOTE),
                                 base_url="http://relay.test",
                                 headers={"Authorization": f"Bearer {self.tokens[who]}"})

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with self.client(who) as http:
            return await http.request(method, path, **kwargs)


@asynccontextmanager
async def world(redis_server: EmbeddedRedis, fake: FakeOpencode,
                **overrides: object) -> AsyncIterator[World]:
    settings = relay_settings(redis_server.url, auth=True, **overrides)
    redis = Redis.from_url(redis_server.url)
    keys = Keys(settings.key_prefix)
    store, teams = TokenStore(redis, keys), Teams(redis, keys)
    tokens, ids = {}, {}
    for name in ("owner", "member", "viewer", "boss", "outsider", "root"):
        info, tokens[name] = await store.create(name, admin=name == "root")
        ids[name] = info.id
    alpha, beta = await teams.create("alpha"), await teams.create("beta")
    for name, role in (("owner", "member"), ("member", "member"), ("viewer", "viewer"),
                       ("boss", "admin")):
        await teams.set_member(alpha, ids[name], role)  # type: ignore[arg-type]
    await teams.set_member(beta, ids["outsider"], "member")
    app = create_app(settings, transport=fake.transport())
    async with LifespanManager(app) as manager:
        yield World(settings, manager.app, redis, tokens, ids)
    await redis.aclose()


@pytest.fixture()
def fake() -> FakeOpencode:
    return FakeOpencode()


def _fill(template: str, sid: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "request_id":
            return "que_pending1" if "/questions/" in template else "per_pending1"
        return "shr_0123456789abcdef" if name == "share_id" else sid
    return re.sub(r"\{(\w+)\}", value, template)


def _request(method: str, template: str, sid: str) -> dict[str, Any]:
    path = _fill(template, sid)
    body = None
    if method == "PATCH":
        body = {"title": "renamed"}
    elif method == "POST" and not template.endswith("/reject"):
        body = next((b for k, b in _BODIES.items() if k in template), {})
    query = next((q for k, q in _QUERIES.items() if template.endswith(k)), None)
    return {"method": method, "path": path, **({"json": body} if body is not None else {}),
            **({"params": query} if query else {})}


async def test_each_role_may_do_what_its_right_allows_on_every_session_route(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    async with world(redis_server, fake) as w:
        spec = (await w.call("root", "GET", "/api/openapi.json")).json()
        routes = [(m.upper(), p) for p, item in spec["paths"].items() for m in item
                  if "{sid}" in p]
        assert sorted(routes) == sorted(NEEDS), "classify every session route in NEEDS"
        created = await w.call("owner", "POST", "/api/sessions", json={"title": "team work"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        # A pending permission request and question, so answering reaches the role check.
        for request_id in ("per_pending1", "que_pending1"):
            await w.redis.hset(w.keys.requests(sid), request_id,
                               json.dumps({"id": request_id, "sessionID": sid}))
        ghost = "ses_" + uuid.uuid4().hex[:24]
        roles = {"viewer": "viewer", "member": "member", "boss": "admin", "outsider": None,
                 "owner": "admin", "root": "admin"}  # the owner and relay admins: everything
        checked = 0
        for method, template in NEEDS:
            if template.endswith("/events") or method == "DELETE" and template.endswith("{sid}"):
                continue  # streams: tests/test_teams.py; deleting: below
            for who, role in roles.items():
                answer = await w.call(who, **_request(method, template, sid))
                error = answer.json().get("error", {}) if answer.headers.get(
                    "content-type", "").startswith("application/json") else {}
                allowed = RANK[role] >= NEEDED_RANK[NEEDS[(method, template)]]
                where = (who, method, template, answer.status_code, answer.text[:200])
                if role is None:  # the same answer as for a session that never existed
                    unknown = await w.call(who, **_request(method, template, ghost))
                    assert answer.status_code == 404, where
                    assert answer.text.replace(sid, "ID") == unknown.text.replace(ghost, "ID")
                elif allowed:
                    assert error.get("code") != "role_refused", where
                    assert f"session {sid!r} was not found" not in error.get("message", ""), \
                        where
                else:
                    assert answer.status_code == 403 and error["code"] == "role_refused", where
                    assert "team 'alpha'" in error["message"] and role in error["message"]
                    documented = spec["paths"][template][method.lower()]["responses"]
                    assert "403" in documented, (method, template)  # the OpenAPI says so
                checked += 1
        assert checked == (len(NEEDS) - 2) * len(roles)
        assert fake.prompts == [(sid, p) for _w, p in fake.prompts]  # all into the one session
        assert len(fake.prompts) == 4  # owner, member, boss and root: the viewer's never went
        # Deleting: the viewer and member may not, the team's admin may.
        for who, status in (("outsider", 404), ("viewer", 403), ("member", 403), ("boss", 200)):
            answer = await w.call(who, "DELETE", f"/api/sessions/{sid}")
            assert answer.status_code == status, (who, answer.text)


async def test_sessions_of_a_team_are_listed_for_its_members_only(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    async with world(redis_server, fake) as w:
        sid = (await w.call("owner", "POST", "/api/sessions", json={})).json()["id"]
        mine = (await w.call("owner", "POST", "/api/sessions", json={"team": None})).json()["id"]
        for who, sees in (("member", {sid}), ("viewer", {sid}), ("boss", {sid}),
                          ("outsider", set()), ("owner", {sid, mine}), ("root", {sid, mine})):
            listed = (await w.call(who, "GET", "/api/sessions")).json()
            assert {s["id"] for s in listed["sessions"]} == sees, who
            # Each row's team, by name (the session of no team is not named).
            assert listed["teams"] == ({sid: "alpha"} if sid in sees else {}), who
            title = listed["sessions"][0]["title"] if sees else "anything"
            found = (await w.call(who, "GET", "/api/sessions", params={"search": title})).json()
            assert found["teams"] == {s["id"]: "alpha" for s in found["sessions"]
                                      if s["id"] == sid}, who
        seen = (await w.call("viewer", "GET", f"/api/sessions/{sid}")).json()
        assert seen["access"] == {"team": "alpha", "role": "viewer", "right": "read"}
        own = (await w.call("owner", "GET", f"/api/sessions/{mine}")).json()
        assert own["access"] == {"team": None, "role": None, "right": "manage"}
        # A sub-session made by a member stays in the team; the viewer sees it, cannot make one.
        child = await w.call("member", "POST", "/api/sessions", json={"parentID": sid})
        assert child.status_code == 200, child.text
        assert (await w.call("viewer", "GET", f"/api/sessions/{child.json()['id']}")) \
            .json()["access"]["team"] == "alpha"
        refused = await w.call("viewer", "POST", "/api/sessions", json={"parentID": sid})
        assert refused.status_code == 403
        assert (await w.call("outsider", "POST", "/api/sessions",
                             json={"parentID": sid})).status_code == 404


async def test_choosing_the_team_of_a_new_session(redis_server: EmbeddedRedis,
                                                  fake: FakeOpencode) -> None:
    async with world(redis_server, fake) as w:
        async def team_of(answer: httpx.Response, who: str = "root") -> str | None:
            assert answer.status_code == 200, answer.text
            found = await w.call(who, "GET", f"/api/sessions/{answer.json()['id']}")
            return found.json()["access"]["team"]  # type: ignore[no-any-return]

        # Exactly one team to create sessions in: the default. A viewer's team is none.
        assert await team_of(await w.call("member", "POST", "/api/sessions", json={})) == "alpha"
        assert await team_of(await w.call("viewer", "POST", "/api/sessions", json={})) is None
        assert await team_of(await w.call("member", "POST", "/api/sessions",
                                          json={"team": None})) is None
        # Two teams: no default; either may be named.
        gamma = await w.teams.create("gamma")
        await w.teams.set_member(gamma, w.ids["member"], "admin")
        assert await team_of(await w.call("member", "POST", "/api/sessions", json={})) is None
        assert await team_of(await w.call("member", "POST", "/api/sessions",
                                          json={"team": "gamma"})) == "gamma"
        # A viewer may not create in its team; a team one is not in is unknown, like no team.
        viewer = await w.call("viewer", "POST", "/api/sessions", json={"team": "alpha"})
        assert viewer.status_code == 403 and viewer.json()["error"]["code"] == "role_refused"
        for name in ("beta", "nosuchteam"):
            answer = await w.call("member", "POST", "/api/sessions", json={"team": name})
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["message"] == f"team {name!r} was not found"
        bad = await w.call("member", "POST", "/api/sessions", json={"team": "no spaces"})
        assert bad.status_code in (400, 422)
        # A relay admin may use any team.
        assert await team_of(await w.call("root", "POST", "/api/sessions",
                                          json={"team": "beta"})) == "beta"
        assert fake.calls.count("POST /session") == 6  # the refused ones never reached it


async def test_a_team_bound_to_a_server_and_root_keeps_its_sessions_there(
        redis_server: EmbeddedRedis, fake: FakeOpencode, workspace: Path) -> None:
    async with world(redis_server, fake,
                     opencode_url="main=http://opencode.test,alpha-box=http://alpha.test") as w:
        alpha = await w.teams.named("alpha")
        await w.teams.update(alpha, upstream="alpha-box", root=str(workspace / "alpha-root"))
        made = await w.call("member", "POST", "/api/sessions", json={})
        assert made.status_code == 200, made.text
        sid = made.json()["id"]
        assert made.json()["directory"] == str(workspace / "alpha-root")  # the team's root
        assert await w.redis.get(w.keys.session_upstream(sid)) == b"alpha-box"
        below = await w.call("member", "POST", "/api/sessions",
                             json={"directory": str(workspace / "alpha-root" / "app")})
        assert below.status_code == 200 and below.json()["directory"].endswith("alpha-root/app")
        for directory in (workspace / "elsewhere", workspace / "project"):
            outside = await w.call("member", "POST", "/api/sessions",
                                   json={"directory": str(directory)})
            assert outside.status_code == 400, outside.text
            message = outside.json()["error"]["message"]
            assert "outside the workspace root of team 'alpha'" in message
        other = await w.call("member", "POST", "/api/sessions", json={"upstream": "main"})
        assert other.status_code == 400 and "alpha-box" in other.json()["error"]["message"]
        # Without a team, the member may start anywhere under the roots, on any server.
        free = await w.call("member", "POST", "/api/sessions",
                            json={"team": None, "directory": str(workspace / "elsewhere")})
        assert free.status_code == 200, free.text
        assert await w.redis.get(w.keys.session_upstream(free.json()["id"])) == b"main"
        # The project picker offers the team's root, to its members.
        picked = (await w.call("member", "GET", "/api/projects")).json()["projects"]
        root = next(p for p in picked if p["directory"] == str(workspace / "alpha-root"))
        assert root["teams"] == ["alpha"] and "team" in root["sources"]
        theirs = (await w.call("outsider", "GET", "/api/projects")).json()["projects"]
        assert all(p["teams"] == [] for p in theirs)


async def test_team_routes_list_and_manage_members_by_role(redis_server: EmbeddedRedis,
                                                           fake: FakeOpencode) -> None:
    async with world(redis_server, fake) as w:
        mine = (await w.call("viewer", "GET", "/api/teams")).json()["teams"]
        assert [(t["name"], t["role"]) for t in mine] == [("alpha", "viewer")]
        everything = (await w.call("root", "GET", "/api/teams")).json()["teams"]
        assert [t["name"] for t in everything] == ["alpha", "beta"]
        detail = await w.call("viewer", "GET", "/api/teams/alpha")
        assert detail.status_code == 200
        assert {m["principal"]: m["role"] for m in detail.json()["members"]} == {
            w.ids["owner"]: "member", w.ids["member"]: "member", w.ids["viewer"]: "viewer",
            w.ids["boss"]: "admin"}
        hidden = await w.call("outsider", "GET", "/api/teams/alpha")
        unknown = await w.call("outsider", "GET", "/api/teams/nosuchteam")
        assert hidden.status_code == unknown.status_code == 404
        # Only the team's admins (and relay admins) change members.
        body = {"principal": w.ids["outsider"], "role": "viewer"}
        assert (await w.call("member", "PUT", "/api/teams/alpha/members",
                             json=body)).status_code == 403
        assert (await w.call("outsider", "PUT", "/api/teams/alpha/members",
                             json=body)).status_code == 404
        added = await w.call("boss", "PUT", "/api/teams/alpha/members", json=body)
        assert added.status_code == 200, added.text
        assert (await w.call("outsider", "GET", "/api/teams/alpha")).status_code == 200
        bad = await w.call("boss", "PUT", "/api/teams/alpha/members",
                           json={"principal": w.ids["outsider"], "role": "owner"})
        assert bad.status_code == 422
        params = {"principal": w.ids["outsider"]}
        assert (await w.call("viewer", "DELETE", "/api/teams/alpha/members",
                             params=params)).status_code == 403
        removed = await w.call("root", "DELETE", "/api/teams/alpha/members", params=params)
        assert removed.status_code == 200
        assert (await w.call("root", "DELETE", "/api/teams/alpha/members",
                             params=params)).status_code == 404
        assert (await w.call("outsider", "GET", "/api/teams/alpha")).status_code == 404
        # Each change is in the audit log with its team; the refused ones too.
        entries = (await w.call("root", "GET", "/api/audit",
                                params={"team": "alpha", "action": "team."})).json()["entries"]
        assert [(e["action"], e["outcome"], e["principal"]) for e in reversed(entries)] == [
            ("team.member.set", "refused", w.ids["member"]),
            ("team.member.set", "refused", w.ids["outsider"]),
            ("team.member.set", "ok", w.ids["boss"]),
            ("team.member.set", "refused", w.ids["boss"]),
            ("team.member.remove", "refused", w.ids["viewer"]),
            ("team.member.remove", "ok", w.ids["root"]),
            ("team.member.remove", "refused", w.ids["root"])]
        assert entries[-3]["target"] == w.ids["outsider"]


async def test_audit_entries_of_team_sessions_name_the_team(redis_server: EmbeddedRedis,
                                                            fake: FakeOpencode) -> None:
    async with world(redis_server, fake) as w:
        sid = (await w.call("owner", "POST", "/api/sessions", json={})).json()["id"]
        own = (await w.call("owner", "POST", "/api/sessions", json={"team": None})).json()["id"]
        for target in (sid, own):
            assert (await w.call("owner", "POST", f"/api/sessions/{target}/prompt",
                                 json={"text": "hi"})).status_code == 202
        assert (await w.call("viewer", "POST", f"/api/sessions/{sid}/prompt",
                             json={"text": "hi"})).status_code == 403
        assert (await w.call("viewer", "POST", "/api/sessions",
                             json={"team": "alpha"})).status_code == 403
        entries = (await w.call("root", "GET", "/api/audit",
                                params={"action": "session."})).json()["entries"]
        seen = [(e["action"], e["session"], e["team"], e["outcome"]) for e in reversed(entries)]
        assert seen == [("session.create", sid, "alpha", "ok"),
                        ("session.create", own, None, "ok"),
                        ("session.prompt", sid, "alpha", "ok"),
                        ("session.prompt", own, None, "ok"),
                        ("session.prompt", sid, "alpha", "refused"),
                        ("session.create", None, "alpha", "refused")]
        by_team = (await w.call("root", "GET", "/api/audit", params={"team": "alpha"})).json()
        assert {e["session"] for e in by_team["entries"]} == {sid, None}  # None: refused


# ----- the domain modules alone -------------------------------------------------------------
@pytest.fixture()
async def teams(redis: Redis, keys: Keys) -> Teams:
    return Teams(redis, keys)


async def test_roles_come_from_memberships_and_groups(teams: Teams) -> None:
    ops = await teams.create("ops", group="ops-people", group_role="viewer")
    dev = await teams.create("dev", group="devs")
    assert dev.group_role == "member"  # the default role of a group's holders
    with pytest.raises(InvalidInput):
        await teams.create("ops")
    with pytest.raises(InvalidInput):
        await teams.create("../x")
    await teams.set_member(ops, "tok_a", "admin")
    plain = Principal("tok_a", "a", admin=False)
    assert await teams.roles_of(plain) == {ops.id: "admin"}
    grouped = Principal("oidc|b", "b", admin=False, groups=("ops-people", "devs", "other"))
    assert await teams.roles_of(grouped) == {ops.id: "viewer", dev.id: "member"}
    both = Principal("tok_a", "a", admin=False, groups=("ops-people",))
    assert await teams.roles_of(both) == {ops.id: "admin"}  # the stronger of the two
    await teams.set_member(ops, "tok_a", "viewer")
    assert await teams.roles_of(plain) == {ops.id: "viewer"}
    assert await teams.remove_member(ops, "tok_a") and not await teams.remove_member(ops, "tok_a")
    assert await teams.roles_of(plain) == {}
    with pytest.raises(NotFound):
        await teams.named("nope")


async def test_a_deleted_team_leaves_its_sessions_to_their_owners_even_if_made_again(
        redis: Redis, keys: Keys, teams: Teams) -> None:
    access = Access(redis, keys, enabled=True, teams=teams)
    store = StateStore(redis, keys)
    old = await teams.create("team1")
    await teams.set_member(old, "tok_mate", "member")
    async with Staging(redis) as stage:
        store.put_session(stage, session_info("ses_teamwork"))
        store.put_session(stage, session_info("ses_subagent", parent="ses_teamwork"))
        stage.on("ses_teamwork").set(keys.session_owner("ses_teamwork"), "tok_owner")
        stage.on("ses_teamwork").set(keys.session_team("ses_teamwork"), old.id)
        await stage.commit()
    mate = Principal("tok_mate", "mate", admin=False)
    assert (await access.standing(mate, "ses_subagent")).right is Right.DRIVE  # inherited
    await teams.delete(old)
    again = await teams.create("team1")
    await teams.set_member(again, "tok_mate", "admin")
    assert again.id != old.id
    assert await teams.names([old.id, again.id, old.id]) == {again.id: "team1"}  # no old name
    assert (await access.standing(mate, "ses_teamwork")).right is None
    owner = Principal("tok_owner", "owner", admin=False)
    assert (await access.standing(owner, "ses_teamwork")).right is Right.MANAGE


async def test_the_global_stream_filter_follows_team_membership(
        redis: Redis, keys: Keys, teams: Teams, monkeypatch: pytest.MonkeyPatch) -> None:
    access = Access(redis, keys, enabled=True, teams=teams)
    team = await teams.create("streamers")
    await redis.set(keys.session_owner("ses_theirs"), "tok_owner")
    await redis.set(keys.session_team("ses_theirs"), team.id)
    await redis.set(keys.session_owner("ses_private"), "tok_owner")
    clock = [1000.0]
    monkeypatch.setattr("opencode_relay.security.access.time.monotonic", lambda: clock[0])
    token = set_principal(Principal("tok_mate", "mate", admin=False))
    try:
        accept: Callable[[list[str]], bool] | Any = access.event_filter()
        await accept.prepare(["ses_theirs", "ses_private"])
        assert not accept(["ses_theirs"])
        await teams.set_member(team, "tok_mate", "viewer")
        await accept.prepare(["ses_theirs"])
        assert not accept(["ses_theirs"])  # roles are re-read every couple of seconds…
        clock[0] += 3
        await accept.prepare(["ses_theirs"])
        assert accept(["ses_theirs"]) and not accept(["ses_private"])  # …then they count
        await teams.remove_member(team, "tok_mate")
        clock[0] += 3
        await accept.prepare(["ses_theirs"])
        assert not accept(["ses_theirs"])
    finally:
        reset_principal(token)


async def test_a_refusal_names_the_team_and_the_role_needed(
        redis: Redis, keys: Keys, teams: Teams) -> None:
    access = Access(redis, keys, enabled=True, teams=teams)
    team = await teams.create("crew")
    await teams.set_member(team, "tok_v", "viewer")
    await redis.set(keys.session_owner("ses_crew"), "tok_owner")
    await redis.set(keys.session_team("ses_crew"), team.id)
    token = set_principal(Principal("tok_v", "v", admin=False))
    try:
        await access.require("ses_crew", Right.READ)
        with pytest.raises(RoleRefused, match=r"viewer of team 'crew': prompting.*member role"):
            await access.require("ses_crew", Right.DRIVE)
        with pytest.raises(RoleRefused, match=r"renaming.*admin role"):
            await access.require("ses_crew", Right.MANAGE)
        with pytest.raises(NotFound):
            await access.require("ses_nobodys", Right.READ)
    finally:
        reset_principal(token)


async def test_group_holders_are_kept_as_the_last_sign_in_says(redis: Redis,
                                                                keys: Keys) -> None:
    """groups.py: who holds a group, with each holder's end (its login's) and the principal's
    own record of what to leave at the next sign-in, each key expiring with that login."""
    groups, now = GroupHolders(redis, keys), time.time()

    async def ttl(key: str) -> float:
        return await redis.pttl(key) / 1000

    await groups.record("pia", ["a", "b"], "login-1", now + 100)
    assert await groups.holders("a") == await groups.holders("b") == ["pia"]
    assert {g.decode() for g in await redis.smembers(keys.principal_groups("pia"))} == {"a", "b"}
    assert await redis.get(keys.principal_groups_login("pia")) == b"login-1"
    for key in (keys.group_holders("a"), keys.principal_groups("pia"),
                keys.principal_groups_login("pia")):
        assert 95 < await ttl(key) <= 102, key
    # Signing in again with the same groups: each lasts as long as the newer login.
    await groups.record("pia", ["a", "b"], "login-2", now + 1000)
    for key in (keys.group_holders("a"), keys.principal_groups("pia"),
                keys.principal_groups_login("pia")):
        assert 995 < await ttl(key) <= 1002, key
    assert await redis.zscore(keys.group_holders("a"), "pia") == pytest.approx(now + 1000)
    # Without `a`: left at once.
    await groups.record("pia", ["b"], "login-3", now + 1000)
    assert (await groups.holders("a"), await groups.holders("b")) == ([], ["pia"])
    assert await redis.smembers(keys.principal_groups("pia")) == {b"b"}
    # A holder whose login has ended is not one, and the next sign-in into the group prunes it.
    await redis.zadd(keys.group_holders("b"), {"ended": now - 1})
    assert await groups.holders("b") == ["pia"]
    await groups.record("quin", ["b"], "login-q", now + 1000)
    assert await redis.zscore(keys.group_holders("b"), "ended") is None
    assert await groups.holders("b") == ["pia", "quin"]
    # An older login's end changes nothing; the end of the one that recorded them, all.
    await groups.signed_out("pia", "login-2")
    assert await groups.holders("b") == ["pia", "quin"]
    await groups.signed_out("pia", "login-3")
    assert await groups.holders("b") == ["quin"]
    assert not await redis.exists(keys.principal_groups("pia"),
                                  keys.principal_groups_login("pia"))
