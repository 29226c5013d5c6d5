"""Share links (read-only, relay-served) and export, against the real stack with auth on."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.redis_under_test import sync_redis_client
from tests.support.secured import bearer, make_token
from tests.support.stack import EventCollector, RelayProcess, wait_for, write_opencode_config

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def tokens(secured: RelayProcess) -> dict[str, str]:
    return {name: make_token(secured, name, admin=name == "root")
            for name in ("alice", "bob", "root")}


def _client(relay: RelayProcess, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=relay.url, headers=bearer(token) if token else {}, timeout=60)


def _session(api: httpx.Client, scripted: ScriptedProvider, title: str) -> str:
    created = api.post("/api/sessions", json={"title": title})
    assert created.status_code == 200, created.text
    sid = created.json()["id"]
    marker = scripted.script(f"share{uuid.uuid4().hex[:8]}", [[{"text": "first-answer"}]])
    answer = api.post(f"/api/sessions/{sid}/messages", json={"text": f"first-prompt {marker}"})
    assert answer.status_code == 200, answer.text
    return sid


def _share(api: httpx.Client, sid: str, **body: int) -> dict[str, str]:
    made = api.post(f"/api/sessions/{sid}/share", json=body)
    assert made.status_code == 200, made.text
    return made.json()


def test_a_share_link_shows_the_transcript_and_live_events_and_nothing_else(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    alice = _client(secured, tokens["alice"])
    sid = _session(alice, scripted, "shared-title")
    other = _session(alice, scripted, "not-shared-title")
    share = _share(alice, sid)
    token = share["token"]
    assert share["path"] == f"/share/{token}" and share["url"].endswith(share["path"])
    assert share["expiresAt"] is None and share["sessionID"] == sid
    assert re.fullmatch(rf"{sid}\.[A-Za-z0-9_-]{{43}}", token)

    anonymous = _client(secured)
    page = anonymous.get(share["path"])
    assert page.status_code == 200 and "<script" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    view = anonymous.get(f"{share['path']}/session")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["session"]["id"] == sid and body["session"]["title"] == "shared-title"
    texts = [p.get("text", "") for m in body["messages"] for p in m["parts"]]
    assert any("first-prompt" in t for t in texts) and "first-answer" in texts
    assert body["share"] == {"id": share["id"], "expiresAt": None}

    # The live stream: a new message arrives on it.
    stream = EventCollector(f"{secured.url}{share['path']}/events?after={body['cursor']}").start()
    try:
        assert stream.status == 200
        marker = scripted.script(f"live{uuid.uuid4().hex[:8]}", [[{"text": "live-answer"}]])
        assert alice.post(f"/api/sessions/{sid}/prompt",
                          json={"text": f"live {marker}"}).status_code == 202
        stream.wait_for_type("message.part.updated",
                             where=lambda p: p["properties"]["part"].get("text") == "live-answer")
        assert all(p.get("properties", {}).get("sessionID", sid) == sid
                   or p["type"].startswith("message.")
                   for p in stream.payloads())
        assert other not in json.dumps(stream.payloads())
    finally:
        stream.close()

    # The token opens nothing else: not as a bearer token, not as the login cookie, not in
    # another session's path, not the session list or actions.
    as_bearer = _client(secured, token)
    cookie = httpx.Client(base_url=secured.url, cookies={"ocr_session": token}, timeout=60)
    for method, path in [("GET", "/api/sessions"), ("GET", f"/api/sessions/{sid}"),
                         ("GET", f"/api/sessions/{sid}/messages"),
                         ("GET", f"/api/sessions/{other}/messages"),
                         ("POST", f"/api/sessions/{sid}/prompt"),
                         ("POST", f"/api/sessions/{sid}/abort"),
                         ("GET", f"/api/sessions/{sid}/shares"),
                         ("POST", f"/api/sessions/{sid}/share"),
                         ("GET", f"/api/sessions/{sid}/export"),
                         ("GET", f"/api/sessions/{sid}/tree"),
                         ("POST", f"/api/sessions/{sid}/terminal"), ("GET", "/api/me")]:
        kwargs = {"json": {"text": "x"}} if method == "POST" else {}
        assert as_bearer.request(method, path, **kwargs).status_code == 401, (method, path)
        with_cookie = cookie.request(method, path, **kwargs)
        assert with_cookie.status_code == 401, (method, path)
    # A token for one session does not open another (the session id is part of the token).
    forged = token.replace(sid, other)
    assert anonymous.get(f"/share/{forged}/session").status_code == 404
    assert anonymous.get(f"/share/{forged}").status_code == 404
    for path in ["/share/nonsense/session", f"/share/{token}x/session", f"/share/{token}/x"]:
        assert anonymous.get(path).status_code == 404, path
    # A logged-in user's credentials do not widen the link: bob sees exactly the same.
    bob = _client(secured, tokens["bob"])
    assert bob.get(f"{share['path']}/session").json()["session"]["id"] == sid
    assert bob.get(f"/api/sessions/{sid}").status_code == 404


def test_only_the_owner_or_an_admin_shares_and_lists(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    alice, bob, root = (_client(secured, tokens[n]) for n in ("alice", "bob", "root"))
    sid = _session(alice, scripted, "owner-only")
    share = _share(alice, sid)
    assert bob.post(f"/api/sessions/{sid}/share", json={}).status_code == 404
    assert bob.get(f"/api/sessions/{sid}/shares").status_code == 404
    assert bob.delete(f"/api/sessions/{sid}/shares/{share['id']}").status_code == 404
    listed = alice.get(f"/api/sessions/{sid}/shares")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["shares"]] == [share["id"]]
    assert share["token"] not in listed.text  # tokens are shown once, never listed
    assert root.post(f"/api/sessions/{sid}/share", json={}).status_code == 200
    assert len(alice.get(f"/api/sessions/{sid}/shares").json()["shares"]) == 2
    # Bad input is a clear 4xx.
    assert alice.post(f"/api/sessions/{sid}/share", json={"expiresIn": 5}).status_code == 422
    assert alice.delete(f"/api/sessions/{sid}/shares/shr_0000000000000000").status_code == 404
    assert alice.delete(f"/api/sessions/{sid}/shares/nope").status_code == 400


def test_a_share_link_survives_a_relay_restart_and_dies_on_revoke(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    alice = _client(secured, tokens["alice"])
    sid = _session(alice, scripted, "restart-title")
    share = _share(alice, sid)
    anonymous = _client(secured)
    stream = EventCollector(f"{secured.url}{share['path']}/events").start()
    secured.stop()
    secured.start()
    try:
        assert anonymous.get(f"{share['path']}/session").json()["session"]["id"] == sid
        # The stream opened before the restart was told, and ended.
        wait_for(lambda: "relay.shutdown" in stream.types(), 20, "relay.shutdown on the link")
    finally:
        stream.close()
    # Revoked: the page, the transcript and the stream all answer 404, saying why.
    revoked = alice.delete(f"/api/sessions/{sid}/shares/{share['id']}")
    assert revoked.status_code == 200 and revoked.json() == {"revoked": True}
    gone = anonymous.get(f"{share['path']}/session")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "share_not_found"
    assert "revoked" in gone.json()["error"]["message"]
    page = anonymous.get(share["path"])
    assert page.status_code == 404 and "revoked" in page.text
    assert anonymous.get(f"{share['path']}/events").status_code == 404
    assert alice.get(f"/api/sessions/{sid}/shares").json()["shares"] == []
    # Both are in the audit log, under the share's id and never with its token.
    root = _client(secured, tokens["root"])
    logged = root.get("/api/audit", params={"action": "share.", "session": sid})
    assert logged.status_code == 200, logged.text
    entries = logged.json()["entries"]
    assert [(e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("share.revoke", share["id"], "ok"), ("share.create", share["id"], "ok")]
    assert share["token"] not in logged.text and share["token"].split(".")[1] not in logged.text


def test_a_revoked_link_ends_its_open_stream(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    alice = _client(secured, tokens["alice"])
    sid = _session(alice, scripted, "cut-off")
    share = _share(alice, sid)
    stream = EventCollector(f"{secured.url}{share['path']}/events").start()
    try:
        assert alice.delete(f"/api/sessions/{sid}/shares/{share['id']}").status_code == 200
        time.sleep(6)  # past the stream's re-check interval (api/shared.py)
        marker = scripted.script(f"cut{uuid.uuid4().hex[:8]}", [[{"text": "after-revoke"}]])
        assert alice.post(f"/api/sessions/{sid}/messages",
                          json={"text": marker}).status_code == 200
        time.sleep(1)
        assert "after-revoke" not in json.dumps(stream.payloads())
        wait_for(lambda: not stream._thread.is_alive(), 10, "the stream to end")
    finally:
        stream.close()


def test_an_expired_link_is_gone(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider,
        redis_server: EmbeddedRedis) -> None:

    alice = _client(secured, tokens["alice"])
    sid = _session(alice, scripted, "expiring")
    share = _share(alice, sid, expiresIn=60)
    assert share["expiresAt"] is not None
    assert _client(secured).get(f"{share['path']}/session").status_code == 200
    # Move the expiry into the past, as 60 seconds of waiting would.
    with sync_redis_client(redis_server.url) as r:
        key = f"{secured.prefix}session:{{{sid}}}:shares"
        record = json.loads(r.hget(key, share["id"]))
        record["expires"] = time.time() - 1
        r.hset(key, share["id"], json.dumps(record))
    gone = _client(secured).get(f"{share['path']}/session")
    assert gone.status_code == 404 and "expired" in gone.json()["error"]["message"]
    assert alice.get(f"/api/sessions/{sid}/shares").json()["shares"] == []


def test_shares_go_with_their_session(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider) -> None:
    alice = _client(secured, tokens["alice"])
    sid = _session(alice, scripted, "deleted-later")
    share = _share(alice, sid)
    assert alice.delete(f"/api/sessions/{sid}").status_code == 200
    assert _client(secured).get(f"{share['path']}/session").status_code == 404


def test_export_markdown_has_the_prompt_the_bash_call_and_the_diff_and_json_round_trips(
        secured: RelayProcess, tokens: dict[str, str], scripted: ScriptedProvider,
        opencode: EmbeddedOpencode) -> None:
    alice = _client(secured, tokens["alice"])
    project = opencode.directory.parent / f"export-{uuid.uuid4().hex[:8]}"
    write_opencode_config(project, scripted)  # the scripted model; bash asks first
    notes = project / "notes.txt"
    marker = scripted.script(f"export{uuid.uuid4().hex[:8]}", [
        [{"tool": "bash", "args": {"command": "echo exported-$((40+2))",
                                   "description": "echo"}}],
        [{"tool": "write", "args": {"filePath": str(notes), "content": "alpha\nbeta\n"}}],
        [{"text": "All done."}]])
    created = alice.post("/api/sessions", json={"title": "Export me", "directory": str(project)})
    assert created.status_code == 200, created.text
    sid = created.json()["id"]
    stream = EventCollector(f"{secured.url}/api/sessions/{sid}/events",
                            bearer(tokens["alice"])).start()
    try:
        assert alice.post(f"/api/sessions/{sid}/prompt",
                          json={"text": f"export-prompt {marker}"}).status_code == 202
        asked = stream.wait_for_type("permission.asked")
        assert alice.post(f"/api/sessions/{sid}/permissions/{asked['properties']['id']}",
                          json={"reply": "once"}).status_code == 200
        stream.wait_for_type("session.idle", timeout=60)
    finally:
        stream.close()

    md = alice.get(f"/api/sessions/{sid}/export", params={"format": "markdown"})
    assert md.status_code == 200, md.text
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.headers["content-disposition"] == f'attachment; filename="Export-me-{sid}.md"'
    text = md.text
    assert text.startswith("# Export me\n")
    assert "export-prompt" in text and "All done." in text
    assert "```bash\necho exported-$((40+2))\n```" in text
    assert "exported-42" in text  # the command's output
    assert "```diff\n--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1,2 @@\n+alpha\n+beta\n```" in text

    raw = alice.get(f"/api/sessions/{sid}/export", params={"format": "json"})
    assert raw.status_code == 200
    assert raw.headers["content-disposition"].endswith(f'{sid}.json"')
    exported = raw.json()
    assert exported["session"] == alice.get(f"/api/sessions/{sid}").json()["session"]
    assert exported["messages"] == alice.get(f"/api/sessions/{sid}/messages").json()["messages"]

    bob = _client(secured, tokens["bob"])
    assert bob.get(f"/api/sessions/{sid}/export").status_code == 404
    assert alice.get(f"/api/sessions/{sid}/export", params={"format": "pdf"}).status_code == 422


def test_opencodes_own_cloud_share_is_off(oc: httpx.Client, opencode: EmbeddedOpencode) -> None:
    """The stack's opencode has `"share": "disabled"` in its config, and the embedded launcher
    sets OPENCODE_DISABLE_SHARE, so nothing is published to opncd.ai."""
    assert opencode.environment()["OPENCODE_DISABLE_SHARE"] == "true"
    assert oc.get("/config").json().get("share") == "disabled"
