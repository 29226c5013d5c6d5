"""Teams against the real stack: the `opencode-relay team` commands, and each role on a team's
session over the routes that stream or leave the API (global and per-session SSE, share links,
terminals), with real prompts answered by opencode. The role of every REST route is pinned
in-process (tests/test_unit_teams.py)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from opencode_relay.api.events import TEAM_RECHECK_SECONDS
from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import EventCollector, RelayProcess, wait_for

pytestmark = pytest.mark.integration

SECURED_ENV = {"RELAY_COOKIE_SECURE": "false", "RELAY_TERMINAL_RECHECK_SECONDS": "0.5"}
PEOPLE = {"owner": "member", "member": "member", "viewer": "viewer", "boss": "admin"}


@pytest.fixture(scope="module")
def tokens(secured: RelayProcess) -> dict[str, str]:
    """Everyone may open terminals but `boss` (so the grant and the role are seen apart)."""
    return {name: make_token(secured, f"team-{name}", admin=name == "root",
                             terminal=name not in ("boss", "root"))
            for name in (*PEOPLE, "outsider", "root")}


@pytest.fixture(scope="module")
def ids(secured: RelayProcess, tokens: dict[str, str]) -> dict[str, str]:
    return {name: token_id(secured, f"team-{name}") for name in tokens}


def _cli(secured: RelayProcess, *args: str, code: int = 0) -> str:
    done = relay_cli(secured, "team", *args)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def teams(secured: RelayProcess, ids: dict[str, str]) -> None:
    _cli(secured, "create", "alpha")
    for name, role in PEOPLE.items():
        _cli(secured, "add", "alpha", ids[name], role)
    _cli(secured, "create", "beta")
    _cli(secured, "add", "beta", ids["outsider"], "admin")


@pytest.fixture(scope="module")
def session(secured: RelayProcess, tokens: dict[str, str], teams: None,
            scripted: ScriptedProvider) -> dict[str, str]:
    """A session the owner made for team alpha (its only team, so the default), answered."""
    with httpx.Client(base_url=secured.url, headers=bearer(tokens["owner"]), timeout=60) as api:
        created = api.post("/api/sessions", json={"title": "alpha-team-work"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        marker = scripted.script(f"team{uuid.uuid4().hex[:8]}", [[{"text": "first answer"}]])
        assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
    return {"sid": sid}


def test_the_team_commands_manage_teams_and_are_audited(
        secured: RelayProcess, ids: dict[str, str], teams: None, opencode: EmbeddedOpencode,
        tmp_path: Path) -> None:
    listed = _cli(secured, "list", "alpha")
    assert listed.splitlines()[0].startswith("alpha\tteam_")
    assert f"  {ids['viewer']}\tviewer" in listed and f"  {ids['boss']}\tadmin" in listed
    _cli(secured, "create", "scratch", "--group", "eng", "--group-role", "viewer")
    assert "group 'eng' as viewer" in _cli(secured, "list", "scratch")
    assert "exists already" in _cli(secured, "create", "scratch", code=2)
    assert "invalid choice: 'owner'" in _cli(secured, "add", "scratch", ids["viewer"], "owner",
                                             code=2)
    assert "no opencode server named 'nowhere'" in _cli(secured, "set-upstream", "scratch",
                                                        "nowhere", code=2)
    _cli(secured, "set-upstream", "scratch", "default")
    assert "outside the workspace roots" in _cli(secured, "set-root", "scratch", "/usr", code=2)
    root = opencode.directory.parent
    _cli(secured, "set-root", "scratch", str(root))
    assert f"upstream default\troot {root}" in _cli(secured, "list", "scratch")
    _cli(secured, "set-root", "scratch", "-")
    assert "root -" in _cli(secured, "list", "scratch")
    _cli(secured, "add", "scratch", ids["viewer"], "member")
    _cli(secured, "remove", "scratch", ids["viewer"])
    assert "is not a member" in _cli(secured, "remove", "scratch", ids["viewer"], code=1)
    _cli(secured, "delete", "scratch")
    assert "team 'scratch' was not found" in _cli(secured, "list", "scratch", code=2)
    audited = relay_cli(secured, "audit", "--team", "scratch", "--json")
    seen = [json.loads(line) for line in audited.stdout.splitlines()]
    assert [(e["action"], e["outcome"], e["principal"]) for e in seen] == [
        ("team.create", "ok", "cli"), ("team.upstream.set", "ok", "cli"),
        ("team.root.set", "ok", "cli"), ("team.root.set", "ok", "cli"),
        ("team.member.set", "ok", "cli"), ("team.member.remove", "ok", "cli"),
        ("team.member.remove", "refused", "cli"), ("team.delete", "ok", "cli")]


def test_a_viewer_reads_but_cannot_prompt_and_outsiders_see_nothing(
        secured: RelayProcess, tokens: dict[str, str], session: dict[str, str],
        scripted: ScriptedProvider) -> None:
    sid = session["sid"]

    def as_(who: str) -> httpx.Client:
        return httpx.Client(base_url=secured.url, headers=bearer(tokens[who]), timeout=60)

    with as_("viewer") as viewer, as_("member") as member, as_("outsider") as outsider:
        assert viewer.get(f"/api/sessions/{sid}/messages").status_code == 200
        wait_for(lambda: "first answer" in viewer.get(f"/api/sessions/{sid}/messages").text,
                 what="the answer to reach the viewer's transcript")
        refused = viewer.post(f"/api/sessions/{sid}/messages", json={"text": "let me"})
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "code": "role_refused",
            "message": "you are a viewer of team 'alpha': prompting, stopping, undoing, "
                       "forking, compacting, running commands in or opening a terminal of a "
                       "team's session needs the member role (or being its creator)"}
        assert viewer.get(f"/api/sessions/{sid}/export", params={"format": "markdown"}) \
            .status_code == 200
        marker = scripted.script(f"team{uuid.uuid4().hex[:8]}",
                                 [[{"text": "member turn zebracorn"}]])
        assert member.post(f"/api/sessions/{sid}/messages",
                           json={"text": marker}).status_code == 200
        wait_for(lambda: "zebracorn" in viewer.get(f"/api/sessions/{sid}/messages").text,
                 what="the member's prompt in the viewer's transcript")
        hidden = outsider.get(f"/api/sessions/{sid}/messages")
        assert hidden.status_code == 404 and "alpha" not in hidden.text
        for who in (viewer, member):
            assert sid in {s["id"] for s in who.get("/api/sessions").json()["sessions"]}
        assert sid not in {s["id"] for s in outsider.get("/api/sessions").json()["sessions"]}
        # Search finds it for the team, not for others.
        wait_for(lambda: sid in {r["sessionID"] for r in viewer.get(
            "/api/search", params={"q": "zebracorn"}).json()["results"]}, what="a search hit")
        assert outsider.get("/api/search", params={"q": "zebracorn"}).json()["results"] == []


def test_streams_carry_a_team_session_to_its_members_only(
        secured: RelayProcess, tokens: dict[str, str], session: dict[str, str],
        scripted: ScriptedProvider) -> None:
    sid = session["sid"]
    everything = {who: EventCollector(f"{secured.url}/api/events",
                                      headers=bearer(tokens[who])).start()
                  for who in ("viewer", "member", "outsider", "root")}
    own = EventCollector(f"{secured.url}/api/sessions/{sid}/events",
                         headers=bearer(tokens["viewer"])).start()
    try:
        refused = httpx.get(f"{secured.url}/api/sessions/{sid}/events",
                            headers=bearer(tokens["outsider"]), timeout=10)
        assert refused.status_code == 404
        marker = scripted.script(f"team{uuid.uuid4().hex[:8]}", [[{"text": "streamed words"}]])
        answer = httpx.post(f"{secured.url}/api/sessions/{sid}/messages", timeout=60,
                            headers=bearer(tokens["owner"]), json={"text": marker})
        assert answer.status_code == 200, answer.text

        def idle(p: dict[str, object]) -> bool:
            return p["properties"]["sessionID"] == sid  # type: ignore[index]
        for who in ("viewer", "member", "root"):
            everything[who].wait_for_type("session.idle", where=idle)
            assert "streamed words" in json.dumps(everything[who].payloads())
        own.wait_for_type("session.idle", where=idle)
        assert "streamed words" in json.dumps(own.payloads())
        # The outsider's stream is open and live, and carries none of it.
        mine = httpx.post(f"{secured.url}/api/sessions", headers=bearer(tokens["outsider"]),
                          json={"title": "beta's own"}, timeout=60).json()["id"]
        everything["outsider"].wait_for_type(
            "relay.session.created", where=lambda p: p["properties"]["sessionID"] == mine)
        text = json.dumps(everything["outsider"].payloads())
        assert sid not in text and "streamed words" not in text
    finally:
        for stream in (*everything.values(), own):
            stream.close()


def test_share_links_are_made_by_the_owner_and_team_admins(
        secured: RelayProcess, tokens: dict[str, str], session: dict[str, str]) -> None:
    sid = session["sid"]
    answers = {who: httpx.post(f"{secured.url}/api/sessions/{sid}/share", json={},
                               headers=bearer(tokens[who]), timeout=30)
               for who in ("outsider", "viewer", "member", "boss")}
    assert answers["outsider"].status_code == 404
    assert answers["viewer"].status_code == answers["member"].status_code == 403
    assert "admin role" in answers["member"].json()["error"]["message"]
    made = answers["boss"]
    assert made.status_code == 200, made.text
    opened = httpx.get(f"{secured.url}{made.json()['path']}/session", timeout=30)
    assert opened.status_code == 200 and sid in opened.text
    for who, status in (("member", 403), ("owner", 200), ("outsider", 404)):
        listed = httpx.get(f"{secured.url}/api/sessions/{sid}/shares",
                           headers=bearer(tokens[who]), timeout=30)
        assert listed.status_code == status, who
    revoked = httpx.delete(f"{secured.url}/api/sessions/{sid}/shares/{made.json()['id']}",
                           headers=bearer(tokens["owner"]), timeout=30)
    assert revoked.status_code == 200
    assert httpx.get(f"{secured.url}{made.json()['path']}/session",
                     timeout=30).status_code == 404


def test_terminals_of_a_team_session_need_the_member_role_and_the_grant(
        secured: RelayProcess, tokens: dict[str, str], session: dict[str, str]) -> None:
    sid = session["sid"]

    def open_as(who: str) -> httpx.Response:
        return httpx.post(f"{secured.url}/api/sessions/{sid}/terminal",
                          headers=bearer(tokens[who]), timeout=60)

    assert open_as("outsider").status_code == 404
    viewer = open_as("viewer")
    assert viewer.status_code == 403 and viewer.json()["error"]["code"] == "role_refused"
    boss = open_as("boss")  # may drive the session, has no terminal grant
    assert boss.status_code == 403 and boss.json()["error"]["code"] == "terminal_not_granted"
    member = open_as("member")
    assert member.status_code == 200, member.text
    pty_id = member.json()["id"]
    # The member's shell is its own: the owner may not end it (the same 404 as for none).
    assert httpx.delete(f"{secured.url}/api/terminals/{pty_id}",
                        headers=bearer(tokens["owner"]), timeout=30).status_code == 404
    assert httpx.delete(f"{secured.url}/api/terminals/{pty_id}",
                        headers=bearer(tokens["member"]), timeout=30).status_code == 200


def test_leaving_the_team_ends_the_former_members_terminal(
        secured: RelayProcess, tokens: dict[str, str], ids: dict[str, str],
        opencode: EmbeddedOpencode) -> None:
    _cli(secured, "create", "shells")
    _cli(secured, "add", "shells", ids["outsider"], "admin")
    _cli(secured, "add", "shells", ids["viewer"], "member")  # a member of this team
    made = httpx.post(f"{secured.url}/api/sessions", headers=bearer(tokens["outsider"]),
                      json={"team": "shells"}, timeout=60)
    assert made.status_code == 200, made.text
    viewer = bearer(tokens["viewer"])
    opened = httpx.post(f"{secured.url}/api/sessions/{made.json()['id']}/terminal",
                        headers=viewer, timeout=60)
    assert opened.status_code == 200, opened.text
    pty_id = opened.json()["id"]
    url = f"ws://127.0.0.1:{secured.port}/api/terminals/{pty_id}/connect"
    try:
        with connect(url, additional_headers=viewer, open_timeout=20, compression=None) as ws:
            _cli(secured, "add", "shells", ids["viewer"], "viewer")  # only views it now
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "no longer drive this session" in closed.value.rcvd.reason
        # Its shell is ended too, and the terminal is unknown to it now.
        wait_for(lambda: httpx.get(f"{opencode.url}/pty/{pty_id}").status_code == 404,
                 what="the shell to end")
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=viewer, open_timeout=20).close()
        assert refused.value.response.status_code == 404
    finally:
        _cli(secured, "delete", "shells")


def test_leaving_the_team_closes_its_sessions_to_the_former_member(
        secured: RelayProcess, tokens: dict[str, str], ids: dict[str, str],
        session: dict[str, str], scripted: ScriptedProvider) -> None:
    sid = session["sid"]
    _cli(secured, "create", "leavers")
    _cli(secured, "add", "leavers", ids["outsider"], "member")
    made = httpx.post(f"{secured.url}/api/sessions", headers=bearer(tokens["outsider"]),
                      json={"team": "leavers"}, timeout=60)
    assert made.status_code == 200, made.text
    theirs = made.json()["id"]
    _cli(secured, "add", "leavers", ids["viewer"], "viewer")
    viewer = bearer(tokens["viewer"])
    assert httpx.get(f"{secured.url}/api/sessions/{theirs}", headers=viewer,
                     timeout=30).status_code == 200
    own = EventCollector(f"{secured.url}/api/sessions/{theirs}/events", headers=viewer).start()
    everything = EventCollector(f"{secured.url}/api/events", headers=viewer).start()
    try:
        _cli(secured, "remove", "leavers", ids["viewer"])
        assert httpx.get(f"{secured.url}/api/sessions/{theirs}", headers=viewer,
                         timeout=30).status_code == 404
        time.sleep(TEAM_RECHECK_SECONDS + 0.5)  # the open streams notice at their next frame
        marker = scripted.script(f"team{uuid.uuid4().hex[:8]}", [[{"text": "after-leaving"}]])
        assert httpx.post(f"{secured.url}/api/sessions/{theirs}/messages", timeout=60,
                          headers=bearer(tokens["outsider"]),
                          json={"text": marker}).status_code == 200
        wait_for(lambda: not own._thread.is_alive(), what="the session stream to end")
        time.sleep(1)  # the global stream had its chance to carry the answer
        for stream in (own, everything):
            assert "after-leaving" not in json.dumps(stream.payloads())
        assert httpx.get(f"{secured.url}/api/sessions/{theirs}/events", headers=viewer,
                         timeout=10).status_code == 404
    finally:
        own.close()
        everything.close()
    # Its alpha teammates' session is still the viewer's to read.
    assert httpx.get(f"{secured.url}/api/sessions/{sid}", headers=viewer,
                     timeout=30).status_code == 200
    _cli(secured, "delete", "leavers")


def test_a_team_bound_to_a_root_starts_its_sessions_there(
        secured: RelayProcess, tokens: dict[str, str], ids: dict[str, str],
        opencode: EmbeddedOpencode) -> None:
    root = opencode.directory.parent / f"bound-{uuid.uuid4().hex[:6]}"
    (root / "app").mkdir(parents=True)
    _cli(secured, "create", "bound")
    _cli(secured, "add", "bound", ids["member"], "member")
    _cli(secured, "set-upstream", "bound", "default")
    _cli(secured, "set-root", "bound", str(root))
    member = bearer(tokens["member"])
    try:
        made = httpx.post(f"{secured.url}/api/sessions", headers=member, timeout=60,
                          json={"team": "bound"})
        assert made.status_code == 200, made.text
        assert made.json()["directory"] == str(root)  # opencode itself says where it works
        below = httpx.post(f"{secured.url}/api/sessions", headers=member, timeout=60,
                           json={"team": "bound", "directory": str(root / "app")})
        assert below.status_code == 200 and below.json()["directory"] == str(root / "app")
        outside = httpx.post(f"{secured.url}/api/sessions", headers=member, timeout=60,
                             json={"team": "bound", "directory": str(opencode.directory)})
        assert outside.status_code == 400
        assert f"outside the workspace root of team 'bound' ({root})" in \
            outside.json()["error"]["message"]
        projects = httpx.get(f"{secured.url}/api/projects", headers=member, timeout=60).json()
        offered = {p["directory"]: p for p in projects["projects"]}
        assert offered[str(root)]["teams"] == ["bound"]
    finally:
        _cli(secured, "delete", "bound")
