"""Undo/redo (revert), fork, usage and compact, against real opencode and the scripted LLM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import relay_transcript
from tests.support.stack import EventCollector, RelayProcess, git_project, wait_for

pytestmark = pytest.mark.integration


def _project(opencode: EmbeddedOpencode, scripted: ScriptedProvider, key: str) -> Path:
    return git_project(opencode.directory.parent / f"git-{key}", scripted)


def _session(api: httpx.Client, directory: Path, title: str = "history") -> str:
    created = api.post("/api/sessions", json={"title": title, "directory": str(directory)})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def _ask(api: httpx.Client, sid: str, text: str) -> dict:
    answer = api.post(f"/api/sessions/{sid}/messages", json={"text": text})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _ingested(api: httpx.Client, sid: str, count: int) -> list[dict]:
    """The transcript once the relay holds `count` messages, the last one finished."""
    def ready() -> list[dict] | None:
        messages = relay_transcript(api, sid)
        done = messages and (messages[-1]["info"].get("time") or {}).get("completed")
        return messages if len(messages) == count and done else None
    return list(wait_for(ready, 30, f"{count} messages in the relay"))


def test_undo_restores_the_file_and_redo_brings_it_back(
        api: httpx.Client, relay: RelayProcess, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    target = project / "notes.txt"
    target.write_text("before\n")
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(target), "content": "after\n"}}],
        [{"text": "Rewrote the notes."}]])
    sid = _session(api, project)
    _ask(api, sid, f"rewrite the notes {marker}")
    assert target.read_text() == "after\n"
    messages = _ingested(api, sid, 3)  # user, assistant (tool call), assistant (text)
    user_id = messages[0]["info"]["id"]
    stream = EventCollector(f"{relay.url}/api/sessions/{sid}/events").start()
    try:
        undone = api.post(f"/api/sessions/{sid}/revert", json={"messageID": user_id})
        assert undone.status_code == 200, undone.text
        assert undone.json()["session"]["revert"]["messageID"] == user_id
        assert target.read_text() == "before\n"
        # Read-your-writes: the stored session carries the revert at once.
        assert api.get(f"/api/sessions/{sid}").json()["session"]["revert"]["messageID"] == \
            user_id
        stream.wait_for_type("session.updated",
                             where=lambda p: (p["properties"]["info"].get("revert") or {})
                             .get("messageID") == user_id)
        # opencode keeps the reverted messages until the next prompt: the transcript shows them.
        assert len(relay_transcript(api, sid)) == 3

        redone = api.post(f"/api/sessions/{sid}/unrevert")
        assert redone.status_code == 200, redone.text
        assert not redone.json()["session"].get("revert")
        assert target.read_text() == "after\n"
        assert not api.get(f"/api/sessions/{sid}").json()["session"].get("revert")

        # Undo again, then prompt: opencode drops the undone messages for good.
        assert api.post(f"/api/sessions/{sid}/revert",
                        json={"messageID": user_id}).status_code == 200
        assert target.read_text() == "before\n"
        second = scripted.script(f"{script_key}b", [[{"text": "A fresh start."}]])
        _ask(api, sid, f"start over {second}")
        removed = stream.wait_for_type("message.removed")
        assert removed["properties"]["sessionID"] == sid
        after = _ingested(api, sid, 2)
        assert user_id not in {m["info"]["id"] for m in after}
        assert not api.get(f"/api/sessions/{sid}").json()["session"].get("revert")
        # Usage follows the removals: only the answer that is left counts.
        usage = api.get(f"/api/sessions/{sid}").json()["usage"]
        assert usage["messages"] == 1 and usage["tokens"]["output"] == 5
    finally:
        stream.close()


def test_revert_refuses_what_is_not_the_sessions(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    marker = scripted.script(script_key, [[{"text": "hello"}]])
    sid, other = _session(api, project), _session(api, project, "other")
    answer = _ask(api, sid, f"hi {marker}")
    mid = answer["info"]["id"]
    for body, status in [({"messageID": mid}, 404),            # a message of another session
                         ({"messageID": "msg_nothere"}, 404),
                         ({"messageID": "nope"}, 422),
                         ({}, 422),
                         ({"messageID": mid, "extra": 1}, 422)]:
        response = api.post(f"/api/sessions/{other}/revert", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"]
    wrong_part = api.post(f"/api/sessions/{sid}/revert",
                          json={"messageID": mid, "partID": "prt_nothere"})
    assert wrong_part.status_code == 404, wrong_part.text
    assert api.post("/api/sessions/ses_nothere/unrevert").status_code == 404
    assert api.post("/api/sessions/bad!/revert", json={"messageID": mid}).status_code == 400
    # A session never reverted: unrevert changes nothing.
    assert api.post(f"/api/sessions/{sid}/unrevert").status_code == 200


def test_fork_makes_a_session_of_the_callers_with_the_messages_so_far(
        api: httpx.Client, relay: RelayProcess, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    marker = scripted.script(script_key, [[{"text": "first answer"}]])
    sid = _session(api, project, "to fork")
    answer = _ask(api, sid, f"hi {marker}")
    _ingested(api, sid, 2)
    events = EventCollector(f"{relay.url}/api/events").start()
    try:
        forked = api.post(f"/api/sessions/{sid}/fork", json={})
        assert forked.status_code == 200, forked.text
        new = forked.json()
        assert new["id"] != sid and "fork" in new["title"]
        # Stored with its copied messages at once, and listed.
        copied = relay_transcript(api, new["id"])
        assert [m["info"]["role"] for m in copied] == ["user", "assistant"]
        assert new["id"] in {s["id"] for s in api.get("/api/sessions").json()["sessions"]}
        assert api.get(f"/api/sessions/{new['id']}").json()["usage"]["messages"] == 1
        events.wait_for_type("relay.session.created",
                             where=lambda p: p["properties"]["sessionID"] == new["id"])
    finally:
        events.close()
    # Up to a message: only what came before it.
    partial = api.post(f"/api/sessions/{sid}/fork", json={"messageID": answer["info"]["id"]})
    assert partial.status_code == 200, partial.text
    assert [m["info"]["role"] for m in relay_transcript(api, partial.json()["id"])] == ["user"]
    # The body is optional; a message of another session is refused.
    assert api.post(f"/api/sessions/{sid}/fork").status_code == 200
    other = _session(api, project, "other")
    assert api.post(f"/api/sessions/{other}/fork",
                    json={"messageID": answer["info"]["id"]}).status_code == 404
    assert api.post(f"/api/sessions/{sid}/fork", json={"messageID": 3}).status_code == 422


def test_usage_counts_tokens_and_context_and_compact_summarizes(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    sid = _session(api, project, "usage")
    empty = api.get(f"/api/sessions/{sid}").json()["usage"]
    assert empty["messages"] == 0 and empty["context"]["used"] is None
    # Nothing answered yet: no model to summarize with.
    refused = api.post(f"/api/sessions/{sid}/summarize", json={})
    assert refused.status_code == 400, refused.text
    marker = scripted.script(script_key, [[{"text": "one"}], [{"text": "two"}]])
    _ask(api, sid, f"first {marker}")
    _ask(api, sid, f"second {marker}")
    _ingested(api, sid, 4)
    usage = api.get(f"/api/sessions/{sid}").json()["usage"]
    # The scripted model reports 10 prompt and 5 completion tokens per answer.
    assert usage["tokens"] == {"input": 20, "output": 10, "reasoning": 0,
                               "cache": {"read": 0, "write": 0}}
    assert usage["messages"] == 2 and usage["cost"] == 0
    assert usage["model"] == {"providerID": "scripted", "modelID": "m"}
    assert usage["context"] == {"used": 15, "limit": 1000, "percent": 1.5}

    bad = api.post(f"/api/sessions/{sid}/summarize", json={"model": {"providerID": "no",
                                                                    "modelID": "pe"}})
    assert bad.status_code == 400, bad.text
    assert api.post(f"/api/sessions/{sid}/summarize", json={"model": "x"}).status_code == 422
    compacted = api.post(f"/api/sessions/{sid}/summarize", json={})
    assert compacted.status_code == 200, compacted.text
    assert compacted.json() == {"ok": True}

    def summarized() -> list[dict] | None:
        messages = relay_transcript(api, sid)
        done = [m for m in messages if m["info"].get("summary") is True
                and (m["info"].get("time") or {}).get("completed")]
        return messages if done else None
    messages = wait_for(summarized, 30, "the summary message")
    assert any(p["type"] == "compaction" for m in messages for p in m["parts"])
    assert wait_for(lambda: api.get(f"/api/sessions/{sid}").json()["usage"]["messages"] == 3,
                    30, "the summary to count")


def test_undo_while_the_agent_works_is_a_409(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    marker = scripted.script(script_key, [[{"text": "slow"}, {"sleep": 4}, {"text": " done"}]])
    sid = _session(api, project, "busy")
    assert api.post(f"/api/sessions/{sid}/prompt", json={"text": f"go {marker}"}).status_code \
        == 202
    user = wait_for(lambda: next((m for m in relay_transcript(api, sid)
                                  if m["info"]["role"] == "user"), None), 20, "the prompt")
    wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "busy",
             20, "the session to be busy")
    busy = api.post(f"/api/sessions/{sid}/revert", json={"messageID": user["info"]["id"]})
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["code"] == "session_busy"
    wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle",
             30, "the session to be idle")
