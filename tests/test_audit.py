"""The audit log on the real stack with RELAY_AUTH on: every audited action, done the way a
person does it (login route, the token CLI, the session routes against real opencode), appears
once with its principal, target, outcome and request id, and no secret appears anywhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.redis_under_test import sync_redis_client
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import RelayProcess, wait_for

pytestmark = pytest.mark.integration

PROVIDER_KEY = f"sk-audit-test-{uuid.uuid4().hex}"
SECURED_ENV = {"RELAY_COOKIE_SECURE": "false"}  # logins over plain http


def _idle(api: httpx.Client, sid: str) -> None:
    wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle",
             60, "an idle session")


def test_every_action_is_audited_and_no_secret_is_kept(
        secured: RelayProcess, redis_server: EmbeddedRedis, scripted: ScriptedProvider) -> None:
    relay = secured
    alice = make_token(relay, "alice", terminal=True)
    root = make_token(relay, "root", admin=True)
    alice_id, root_id = token_id(relay, "alice"), token_id(relay, "root")
    temporary = make_token(relay, "temporary")
    temporary_id = token_id(relay, "temporary")
    assert relay_cli(relay, "token", "revoke", temporary_id).returncode == 0
    prompt_words = f"audit-private-words-{uuid.uuid4().hex}"
    # (action, response, principal, target or None for the session) for each HTTP action.
    done: list[tuple[str, httpx.Response, str | None, str | None]] = []
    cookie = ""

    with httpx.Client(base_url=relay.url, timeout=60) as browser:
        login = browser.post("/api/login", json={"token": alice})
        assert login.status_code == 200, login.text
        cookie = browser.cookies["ocr_session"]
        done.append(("auth.login", login, alice_id, None))
        refused = browser.post("/api/login", json={"token": temporary})  # revoked
        assert refused.status_code == 401
        done.append(("auth.login", refused, None, None))
        assert browser.get("/api/me").json()["principal"]["id"] == alice_id
        logout = browser.post("/api/logout")
        assert logout.status_code == 200
        assert httpx.get(f"{relay.url}/api/me",
                         cookies={"ocr_session": cookie}).status_code == 401
        done.append(("auth.logout", logout, alice_id, None))

    with httpx.Client(base_url=relay.url, headers=bearer(alice), timeout=60) as api:
        created = api.post("/api/sessions", json={"title": "audited"})
        assert created.status_code == 200, created.text
        sid = created.json()["id"]
        done.append(("session.create", created, alice_id, sid))
        renamed = api.patch(f"/api/sessions/{sid}", json={"title": "audited, renamed"})
        assert renamed.status_code == 200, renamed.text
        done.append(("session.rename", renamed, alice_id, sid))

        marker = scripted.script(f"aud{uuid.uuid4().hex[:8]}", [[{"text": "First answer."}]])
        first_prompt = f"{marker} {prompt_words}"
        prompted = api.post(f"/api/sessions/{sid}/messages", json={"text": first_prompt})
        assert prompted.status_code == 200, prompted.text
        done.append(("session.prompt", prompted, alice_id, sid))
        first_user = api.get(f"/api/sessions/{sid}/messages").json()["messages"][0]["info"]["id"]

        # A permission (bash), answered.
        marker = scripted.script(f"aud{uuid.uuid4().hex[:8]}", [
            [{"tool": "bash", "args": {"command": "echo audited", "description": "echo"}}],
            [{"text": "Ran it."}]])
        asked = api.post(f"/api/sessions/{sid}/prompt", json={"text": marker})
        assert asked.status_code == 202
        done.append(("session.prompt", asked, alice_id, sid))
        permission = wait_for(lambda: api.get(f"/api/sessions/{sid}/requests")
                              .json()["permissions"], 60, "the permission")[0]["id"]
        replied = api.post(f"/api/sessions/{sid}/permissions/{permission}",
                           json={"reply": "once", "message": prompt_words})
        assert replied.status_code == 200, replied.text
        done.append(("permission.reply", replied, alice_id, permission))
        _idle(api, sid)

        # A question, answered.
        question = {"question": "Which colour?", "header": "Colour",
                    "options": [{"label": "red", "description": "warm"},
                                {"label": "blue", "description": "cool"}]}
        marker = scripted.script(f"aud{uuid.uuid4().hex[:8]}", [
            [{"tool": "question", "args": {"questions": [question]}}], [{"text": "Blue."}]])
        asking = api.post(f"/api/sessions/{sid}/prompt", json={"text": marker})
        assert asking.status_code == 202
        done.append(("session.prompt", asking, alice_id, sid))
        asked_q = wait_for(lambda: api.get(f"/api/sessions/{sid}/requests")
                           .json()["questions"], 60, "the question")[0]["id"]
        answered = api.post(f"/api/sessions/{sid}/questions/{asked_q}",
                            json={"answers": [[prompt_words]]})
        assert answered.status_code == 200, answered.text
        done.append(("question.reply", answered, alice_id, asked_q))
        _idle(api, sid)

        aborted = api.post(f"/api/sessions/{sid}/abort")
        assert aborted.status_code == 200
        done.append(("session.abort", aborted, alice_id, sid))
        forked = api.post(f"/api/sessions/{sid}/fork", json={})
        assert forked.status_code == 200, forked.text
        fork_id = forked.json()["id"]
        done.append(("session.fork", forked, alice_id, fork_id))
        reverted = api.post(f"/api/sessions/{sid}/revert", json={"messageID": first_user})
        assert reverted.status_code == 200, reverted.text
        done.append(("session.revert", reverted, alice_id, sid))

        opened = api.post(f"/api/sessions/{sid}/terminal")
        assert opened.status_code == 200, opened.text
        pty_id = opened.json()["id"]
        done.append(("terminal.open", opened, alice_id, pty_id))
        closed = api.delete(f"/api/terminals/{pty_id}")
        assert closed.status_code == 200
        done.append(("terminal.close", closed, alice_id, pty_id))

        not_allowed = api.put("/api/providers/groq/auth", json={"key": PROVIDER_KEY})
        assert not_allowed.status_code == 403
        done.append(("provider.key.set", not_allowed, alice_id, "groq"))
        someone_elses = api.delete("/api/sessions/ses_0000000000000000000000000x")
        assert someone_elses.status_code == 404
        done.append(("session.delete", someone_elses, alice_id, None))
        for gone in (fork_id, sid):
            deleted = api.delete(f"/api/sessions/{gone}")
            assert deleted.status_code == 200, deleted.text
            done.append(("session.delete", deleted, alice_id, gone))

    with httpx.Client(base_url=relay.url, headers=bearer(root), timeout=60) as admin:
        key_set = admin.put("/api/providers/groq/auth", json={"key": PROVIDER_KEY})
        assert key_set.status_code == 200, key_set.text
        done.append(("provider.key.set", key_set, root_id, "groq"))
        assert httpx.get(f"{relay.url}/api/audit", headers=bearer(alice)).status_code == 403
        entries: list[dict[str, Any]] = []
        after = None
        while True:  # small pages, to follow the cursor
            page = admin.get("/api/audit", params={"since": "1h", "limit": 7,
                                                   **({"after": after} if after else {})})
            assert page.status_code == 200, page.text
            entries.extend(page.json()["entries"])
            after = page.json()["next"]
            if after is None:
                break

    by_request = {e["request_id"]: e for e in entries if e["request_id"]}
    for action, response, principal, target in done:
        entry = by_request.get(response.headers["x-request-id"])
        assert entry is not None, f"no audit entry for {action} ({response.status_code})"
        status = response.status_code
        assert entry["action"] == action, (action, entry)
        assert entry["principal"] == principal, (action, entry)
        assert entry["status"] == status and entry["team"] is None, (action, entry)
        assert entry["outcome"] == ("ok" if status < 400 else "refused"), (action, entry)
        if target is not None:
            assert entry["target"] == target, (action, entry)
    assert len(by_request) == len(done)  # nothing else was audited (reads are not)
    cli = [e for e in entries if e["principal"] == "cli"]
    assert [(e["action"], e["target"], e["outcome"]) for e in reversed(cli)] == [
        ("token.create", alice_id, "ok"), ("token.create", root_id, "ok"),
        ("token.create", temporary_id, "ok"), ("token.revoke", temporary_id, "ok")]
    prompt = by_request[prompted.headers["x-request-id"]]
    assert prompt["detail"] == {"chars": len(first_prompt), "files": 0}

    # The CLI reads the same log.
    listed = relay_cli(relay, "audit", "--since", "1h", "--action", "session.", "--json")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["action"] for e in lines][:2] == ["session.create", "session.rename"]
    assert {e["action"] for e in lines} <= {a for a, *_ in done if a.startswith("session.")}

    # No secret anywhere in the stream: tokens, the login cookie, the provider key, the
    # prompt's words (in a prompt, a permission reply's message, a question's answer).
    client = sync_redis_client(redis_server.url)
    try:
        raw = str(client.xrange(Keys(relay.prefix).audit))
    finally:
        client.close()
    assert raw.count("auth.login") == 2
    for secret in (alice, root, temporary, cookie, PROVIDER_KEY, prompt_words):
        assert secret and secret not in raw
