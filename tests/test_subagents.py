"""Sub-agents (the task tool) and questions: what a child session asks reaches the parent."""

from __future__ import annotations

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode
from tests.support.stack import RelayProcess, wait_for, watched_session

pytestmark = pytest.mark.integration


def test_subagent_permission_is_seen_and_answered_on_the_parent(
        api: httpx.Client, oc: httpx.Client, relay: RelayProcess, scripted: ScriptedProvider,
        script_key: str) -> None:
    child_marker = scripted.script(script_key + "child", [
        [{"tool": "bash", "args": {"command": "echo from-the-child", "description": "echo"}}],
        [{"text": "Child finished."}],
    ])
    marker = scripted.script(script_key, [
        [{"tool": "task", "args": {"description": "delegate", "subagent_type": "general",
                                   "prompt": f"run the echo {child_marker}"}}],
        [{"text": "The sub-agent is done."}],
    ])
    sid, stream = watched_session(api, relay.url, "parent")
    try:
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        asked = stream.wait_for_type("permission.asked", 60)
        child = asked["properties"]["sessionID"]
        assert child != sid
        assert api.get(f"/api/sessions/{child}").json()["session"]["parentID"] == sid
        children = api.get(f"/api/sessions/{sid}/children").json()["sessions"]
        assert [c["id"] for c in children] == [child]
        pending = api.get(f"/api/sessions/{sid}/requests").json()["permissions"]
        assert [p["id"] for p in pending] == [asked["properties"]["id"]]
        answer = api.post(f"/api/sessions/{sid}/permissions/{asked['properties']['id']}",
                          json={"reply": "once"})
        assert answer.status_code == 200, answer.text
        stream.wait_for_type("session.idle", 60,
                             where=lambda p: p["properties"]["sessionID"] == sid)
        # The child's own events came through the parent's stream.
        child_events = [p for p in stream.payloads()
                        if (p.get("properties") or {}).get("sessionID") == child]
        assert any(p["type"] == "message.part.updated" for p in child_events)
        assert_same_as_opencode(api, oc, sid)
        child_messages = assert_same_as_opencode(api, oc, child)
        bash = next(p for m in child_messages for p in m["parts"] if p.get("tool") == "bash")
        assert "from-the-child" in bash["state"]["output"]
    finally:
        stream.close()


def test_question_is_answered_through_the_relay(api: httpx.Client, oc: httpx.Client,
                                                relay: RelayProcess, scripted: ScriptedProvider,
                                                script_key: str) -> None:
    question = {"question": "Which colour?", "header": "Colour",
                "options": [{"label": "red", "description": "warm"},
                            {"label": "blue", "description": "cool"}]}
    marker = scripted.script(script_key, [
        [{"tool": "question", "args": {"questions": [question]}}],
        [{"text": "Blue it is."}],
    ])
    sid, stream = watched_session(api, relay.url, "question")
    try:
        assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
        asked = stream.wait_for_type("question.asked", 60)
        request_id = asked["properties"]["id"]
        wait_for(lambda: api.get(f"/api/sessions/{sid}/requests").json()["questions"], 10,
                 "the pending question")
        answer = api.post(f"/api/sessions/{sid}/questions/{request_id}",
                          json={"answers": [["blue"]]})
        assert answer.status_code == 200, answer.text
        stream.wait_for_type("session.idle", 60)
        assert api.get(f"/api/sessions/{sid}/requests").json()["questions"] == []
        messages = assert_same_as_opencode(api, oc, sid)
        tool = next(p for m in messages for p in m["parts"] if p.get("tool") == "question")
        assert tool["state"]["status"] == "completed"
        assert "blue" in tool["state"]["output"]
    finally:
        stream.close()
