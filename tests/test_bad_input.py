"""Bad input on every route: a clear JSON error with the right 4xx, and stored data intact."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import assert_same_as_opencode, relay_transcript
from tests.support.stack import EventCollector, RelayProcess

pytestmark = pytest.mark.integration

UNKNOWN = "ses_doesnotexist000000000000"

CASES = [
    # (method, path, json body or raw content, expected status, expected code)
    ("GET", "/api/sessions?limit=0", None, 422, "invalid_request"),
    ("GET", "/api/sessions?limit=abc", None, 422, "invalid_request"),
    ("GET", "/api/sessions?limit=100000", None, 422, "invalid_request"),
    ("POST", "/api/sessions", b"{not json", 422, "invalid_request"),
    ("POST", "/api/sessions", [1, 2], 422, "invalid_request"),
    ("POST", "/api/sessions", {"parentID": "nope"}, 422, "invalid_request"),
    ("GET", f"/api/sessions/{UNKNOWN}", None, 404, "not_found"),
    ("GET", "/api/sessions/..%2F..%2Fetc", None, 404, "not_found"),
    ("GET", "/api/sessions/not-a-session", None, 400, "bad_request"),
    ("PATCH", f"/api/sessions/{UNKNOWN}", {"title": "x"}, 404, "not_found"),
    ("DELETE", f"/api/sessions/{UNKNOWN}", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/messages", None, 404, "not_found"),
    ("POST", f"/api/sessions/{UNKNOWN}/messages", {"text": "hi"}, 404, "not_found"),
    ("POST", f"/api/sessions/{UNKNOWN}/prompt", {"text": "hi"}, 404, "not_found"),
    ("POST", f"/api/sessions/{UNKNOWN}/abort", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/status", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/diff", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/todos", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/children", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/requests", None, 404, "not_found"),
    ("GET", f"/api/sessions/{UNKNOWN}/events", None, 404, "not_found"),
    ("GET", "/api/messages/msg_unknown000000/parts", None, 404, "not_found"),
    ("GET", "/api/messages/bogus/parts", None, 400, "bad_request"),
    ("GET", "/api/events?after=yesterday", None, 400, "bad_event_id"),
    ("GET", "/api/sessions/ses", None, 400, "bad_request"),
    ("GET", f"/api/sessions/{UNKNOWN}/permissions/per_x", None, 405, "method_not_allowed"),
    # Directories opencode fails on (its 500 was a 502 here): refused up front.
    ("GET", "/api/agents?directory=/tmp/" + "a" * 256, None, 400, "bad_request"),
    ("GET", "/api/providers?directory=/tmp/%2500", None, 400, "bad_request"),
    ("GET", "/api/agents?directory=/etc/passwd", None, 400, "bad_request"),
    ("GET", "/api/providers?directory=relative/dir", None, 400, "bad_request"),
    ("POST", "/api/sessions", {"directory": "/tmp/" + "é" * 128}, 400, "bad_request"),
    ("POST", "/api/sessions", {"directory": "/etc/hostname"}, 400, "bad_request"),
    ("GET", "/api/nope", None, 404, "not_found"),
    ("PUT", "/api/sessions", {}, 405, "method_not_allowed"),
]

SESSION_CASES = [
    ("PATCH", "", {"title": ""}, 422),
    ("PATCH", "", {"title": "ok", "extra": 1}, 422),
    ("POST", "/messages", {}, 422),
    ("POST", "/messages", {"text": "a", "parts": [{"type": "text", "text": "b"}]}, 422),
    ("POST", "/messages", {"parts": []}, 422),
    ("POST", "/messages", {"parts": [{"text": "no type"}]}, 422),
    ("POST", "/messages", {"text": "x", "model": "no-slash"}, 422),
    ("POST", "/messages", {"text": "x", "model": {"providerID": "nope", "modelID": "nope"}}, 400),
    ("POST", "/prompt", {"text": "x", "agent": "nobody-by-this-name"}, 400),
    ("POST", "/prompt", {"text": 5}, 422),
    ("POST", "/permissions/per_unknown000", {"reply": "once"}, 404),
    ("POST", "/permissions/per_unknown000", {"reply": "sometimes"}, 422),
    ("POST", "/permissions/que_wrongkind00", {"reply": "once"}, 400),
    ("POST", "/questions/que_unknown000", {"answers": [["a"]]}, 404),
    ("POST", "/questions/que_unknown000", {"answers": "a"}, 422),
    ("POST", "/questions/que_unknown000/reject", None, 404),
    ("GET", "/events", None, 400),  # with a bad Last-Event-ID header, below
]


def _send(api: httpx.Client, method: str, path: str, body: object,
          headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, bytes):
        return api.request(method, path, content=body,
                           headers={"content-type": "application/json", **(headers or {})})
    return api.request(method, path, json=body, headers=headers)


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("method,path,body,status,code", CASES)
def test_bad_input_gets_a_clear_error(api: httpx.Client, method: str, path: str, body: object,
                                      status: int, code: str) -> None:
    _assert_error(_send(api, method, path, body), status, code)


def test_bad_input_on_a_real_session_keeps_its_data(api: httpx.Client, oc: httpx.Client,
                                                    scripted: ScriptedProvider,
                                                    script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "stored before the bad requests"}]])
    sid = api.post("/api/sessions", json={"title": "keep me"}).json()["id"]
    assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
    before = assert_same_as_opencode(api, oc, sid)
    for method, suffix, body, status in SESSION_CASES:
        headers = {"Last-Event-ID": "garbage"} if suffix == "/events" else None
        _assert_error(_send(api, method, f"/api/sessions/{sid}{suffix}", body, headers), status)
    assert api.get(f"/api/sessions/{sid}").json()["session"]["title"] == "keep me"
    assert assert_same_as_opencode(api, oc, sid) == before


def test_a_message_id_of_another_session_is_refused_before_opencode(
        api: httpx.Client, oc: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    """opencode answers a new message whose id another session's message has with a bare 500
    (seen by the contract check as our 502): refused with 409, and neither session changes."""
    marker = scripted.script(script_key, [[{"text": "the first session's answer"}]])
    first = api.post("/api/sessions", json={"title": "first"}).json()["id"]
    assert api.post(f"/api/sessions/{first}/messages", json={"text": marker}).status_code == 200
    taken = api.get(f"/api/sessions/{first}/messages").json()["messages"][0]["info"]["id"]
    second = api.post("/api/sessions", json={"title": "second"}).json()["id"]
    before = assert_same_as_opencode(api, oc, first)
    for route in ("messages", "prompt"):
        refused = api.post(f"/api/sessions/{second}/{route}",
                           json={"text": "hi", "messageID": taken})
        _assert_error(refused, 409, "message_id_taken")
    assert assert_same_as_opencode(api, oc, first) == before
    assert oc.get(f"/session/{second}/message").json() == relay_transcript(api, second) == []


def test_one_new_message_id_sent_to_two_sessions_at_once_goes_to_one_of_them(
        api: httpx.Client, oc: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    """Both prompts come before either message exists, so only a claim on the id can tell them
    apart: one is answered, the other refused with 409 (not opencode's 500, our 502)."""
    marker = scripted.script(script_key, [[{"text": "the one answer"}]])
    sids = [api.post("/api/sessions", json={"title": f"race {n}"}).json()["id"] for n in (1, 2)]
    mid = f"msg_race{uuid.uuid4().hex}"
    barrier = threading.Barrier(2)

    def prompt(sid: str) -> httpx.Response:
        barrier.wait()
        return api.post(f"/api/sessions/{sid}/messages", json={"text": marker, "messageID": mid})

    with ThreadPoolExecutor(2) as pool:
        answers = dict(zip(sids, pool.map(prompt, sids), strict=True))
    assert sorted(r.status_code for r in answers.values()) == [200, 409], \
        [(r.status_code, r.text[:200]) for r in answers.values()]
    answered = next(sid for sid, r in answers.items() if r.status_code == 200)
    refused = next(sid for sid, r in answers.items() if r.status_code == 409)
    _assert_error(answers[refused], 409, "message_id_taken")
    assert mid in [m["info"]["id"] for m in relay_transcript(api, answered)]
    assert oc.get(f"/session/{refused}/message").json() == relay_transcript(api, refused) == []


@pytest.mark.parametrize("after", ["0", "1", "0-0"])
def test_a_resume_point_before_the_log_replays_from_its_start(api: httpx.Client,
                                                             relay: RelayProcess,
                                                             after: str) -> None:
    sid = api.post("/api/sessions", json={"title": "from the start"}).json()["id"]
    stream = EventCollector(f"{relay.url}/api/sessions/{sid}/events?after={after}").start()
    try:
        assert stream.status == 200
        created = stream.wait_for_type("relay.session.created", timeout=10)
        assert created["properties"]["sessionID"] == sid
    finally:
        stream.close()
