"""End-to-end scenarios against real opencode, real Redis and the relay as a process."""

from __future__ import annotations

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.stack import RelayProcess, wait_for, watched_session

pytestmark = pytest.mark.integration


def new_session(api: httpx.Client, title: str = "test") -> str:
    response = api.post("/api/sessions", json={"title": title})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def test_prompt_streams_reasoning_and_text_and_writes_a_file(
        api: httpx.Client, oc: httpx.Client, relay: RelayProcess, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    target = opencode.directory / f"{script_key}.txt"
    marker = scripted.script(script_key, [
        [{"reasoning": "The user wants a greeting file."}, {"text": "Writing the file now."},
         {"tool": "write", "args": {"filePath": str(target), "content": "hello relay\n"}}],
        [{"text": "Done: the file holds a greeting."}],
    ])
    sid, stream = watched_session(api, relay.url)
    try:
        answer = api.post(f"/api/sessions/{sid}/messages", json={"text": f"write it {marker}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["info"]["role"] == "assistant"
        assert target.read_text() == "hello relay\n"
        stream.wait_for_type("session.idle")
        types = stream.types()
        assert "message.part.delta" in types
        deltas = [p for p in stream.payloads() if p["type"] == "message.part.delta"]
        assert "".join(d["properties"]["delta"] for d in deltas).startswith(
            "The user wants a greeting file.")
        assert all(p.get("type") not in ("plugin.added", "server.heartbeat", "sync")
                   for p in stream.payloads())
        messages = assert_same_as_opencode(api, oc, sid)
        kinds = [p["type"] for m in messages for p in m["parts"]]
        assert {"reasoning", "text", "tool"} <= set(kinds)
        tool = next(p for m in messages for p in m["parts"] if p["type"] == "tool")
        assert tool["tool"] == "write" and tool["state"]["status"] == "completed"
        # The parts route agrees with the transcript, in opencode's order.
        mid = messages[1]["info"]["id"]
        parts = api.get(f"/api/messages/{mid}/parts").json()["parts"]
        assert parts == messages[1]["parts"]
        assert [p["id"] for p in parts] == sorted(p["id"] for p in parts)
        assert api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle"
    finally:
        stream.close()


def test_todowrite_is_stored(api: httpx.Client, oc: httpx.Client, scripted: ScriptedProvider,
                             script_key: str) -> None:
    todos = [{"content": "write tests", "status": "in_progress", "priority": "high"},
             {"content": "ship it", "status": "pending", "priority": "medium"}]
    marker = scripted.script(script_key, [[{"tool": "todowrite", "args": {"todos": todos}}],
                                          [{"text": "Planned."}]])
    sid = new_session(api)
    assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
    wait_for(lambda: api.get(f"/api/sessions/{sid}/todos").json()["todos"] == todos, 20,
             "todos in the relay")
    assert oc.get(f"/session/{sid}/todo").json() == todos
    assert_same_as_opencode(api, oc, sid)


def test_bash_permission_answered_through_the_relay(
        api: httpx.Client, oc: httpx.Client, relay: RelayProcess, scripted: ScriptedProvider,
        script_key: str) -> None:
    marker = scripted.script(script_key, [
        [{"tool": "bash", "args": {"command": "echo relay-$((20+22))", "description": "echo"}}],
        [{"text": "The command ran."}],
    ])
    sid, stream = watched_session(api, relay.url)
    try:
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        asked = stream.wait_for_type("permission.asked")
        request_id = asked["properties"]["id"]
        pending = api.get(f"/api/sessions/{sid}/requests").json()
        assert [p["id"] for p in pending["permissions"]] == [request_id]
        bad = api.post(f"/api/sessions/{sid}/permissions/{request_id}", json={"reply": "maybe"})
        assert bad.status_code == 422 and "reply" in bad.json()["error"]["message"]
        ok = api.post(f"/api/sessions/{sid}/permissions/{request_id}", json={"reply": "once"})
        assert ok.status_code == 200, ok.text
        stream.wait_for_type("session.idle")
        messages = assert_same_as_opencode(api, oc, sid)
        bash = next(p for m in messages for p in m["parts"] if p.get("tool") == "bash")
        assert bash["state"]["status"] == "completed"
        assert "relay-42" in bash["state"]["output"]
        assert api.get(f"/api/sessions/{sid}/requests").json()["permissions"] == []
    finally:
        stream.close()


def test_failing_tool_stores_the_error_part(api: httpx.Client, oc: httpx.Client,
                                            opencode: EmbeddedOpencode,
                                            scripted: ScriptedProvider, script_key: str) -> None:
    missing = opencode.directory / "does-not-exist" / f"{script_key}.txt"
    marker = scripted.script(script_key, [
        [{"tool": "read", "args": {"filePath": str(missing)}}],
        [{"text": "That file is missing."}],
    ])
    sid = new_session(api)
    assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
    messages = assert_same_as_opencode(api, oc, sid)
    read = next(p for m in messages for p in m["parts"] if p.get("tool") == "read")
    assert read["state"]["status"] == "error"
    assert read["state"]["error"]


def test_abort_mid_stream(api: httpx.Client, oc: httpx.Client, relay: RelayProcess,
                          scripted: ScriptedProvider, script_key: str) -> None:
    slow = [{"text": "Working slowly "}] + [{"sleep": 0.3}, {"text": "and on "}] * 40
    marker = scripted.script(script_key, [slow])
    sid, stream = watched_session(api, relay.url)
    try:
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        stream.wait_for_type("message.part.delta")
        wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "busy",
                 10, "busy status")
        assert api.post(f"/api/sessions/{sid}/abort").json() == {"aborted": True}
        wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle",
                 20, "idle after abort")
        messages = assert_same_as_opencode(api, oc, sid)
        assistant = messages[-1]["info"]
        assert assistant["role"] == "assistant"
        assert assistant.get("error", {}).get("name") == "MessageAbortedError"
    finally:
        stream.close()
