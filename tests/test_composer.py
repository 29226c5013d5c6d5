"""The composer's API against real opencode: slash commands, @-mentioned files, attachments."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.stack import wait_for

pytestmark = pytest.mark.integration

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def new_session(api: httpx.Client) -> str:
    response = api.post("/api/sessions", json={"title": "composer"})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def requests_with(scripted: ScriptedProvider, marker: str) -> list[dict[str, Any]]:
    return [r for r in scripted.book.requests if r.get("tools") and marker in json.dumps(r)]


def last_user_content(request: dict[str, Any]) -> list[dict[str, Any]]:
    user = [m for m in request["messages"] if m.get("role") == "user"][-1]
    content = user["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_commands_are_listed_with_the_user_defined_one(api: httpx.Client) -> None:
    sid = new_session(api)
    for query in ({}, {"session": sid}):
        response = api.get("/api/commands", params=query)
        assert response.status_code == 200, response.text
        commands = {c["name"]: c for c in response.json()["commands"]}
        assert commands["relay-greet"]["description"] == "Greets someone warmly"
        assert "init" in commands  # a built-in one
        assert all("template" not in c for c in commands.values())
    assert api.get("/api/commands", params={"session": "nope"}).status_code == 422


def test_a_command_reaches_the_model_with_its_template_expanded(
        api: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "Hello, warmly."}]])
    sid = new_session(api)
    answer = api.post(f"/api/sessions/{sid}/command",
                      json={"command": "relay-greet", "arguments": f"Ada {marker}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["info"]["role"] == "assistant"
    sent = requests_with(scripted, marker)
    assert sent, "the model got no request"
    text = " ".join(c.get("text", "") for c in last_user_content(sent[-1]))
    assert f"Please greet Ada {marker} warmly." in text


def test_bad_commands_get_a_json_error(api: httpx.Client) -> None:
    sid = new_session(api)
    unknown = api.post(f"/api/sessions/{sid}/command", json={"command": "no-such-command"})
    assert unknown.status_code == 400
    assert "unknown command" in unknown.json()["error"]["message"]
    for body in ({}, {"command": ""}, {"command": "a b"}, {"command": "x", "extra": 1},
                 {"command": "x", "parts": [{"type": "text", "text": "t"}]}):
        response = api.post(f"/api/sessions/{sid}/command", json=body)
        assert response.status_code == 422, (body, response.text)


def test_files_are_found_in_the_session_directory_and_a_mention_sends_the_content(
        api: httpx.Client, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        script_key: str) -> None:
    name = f"mention-{script_key}.txt"
    (opencode.directory / name).write_text(f"the secret of {script_key} is 42\n")
    sid = new_session(api)

    def search() -> dict[str, Any] | None:
        found = api.get(f"/api/sessions/{sid}/files", params={"query": f"mention-{script_key}"})
        assert found.status_code == 200, found.text
        return found.json() if name in found.json()["files"] else None

    # opencode's file index picks a new file up from its directory watcher, a moment later.
    body = wait_for(search, timeout=20, what=f"{name} in the file search")
    marker = scripted.script(script_key, [[{"text": "Read it."}]])
    part = {"type": "file", "mime": "text/plain", "filename": name,
            "url": f"file://{body['directory']}/{name}"}
    answer = api.post(f"/api/sessions/{sid}/messages",
                      json={"parts": [{"type": "text", "text": f"look at @{name} {marker}"},
                                      part]})
    assert answer.status_code == 200, answer.text
    sent = requests_with(scripted, marker)
    assert f"the secret of {script_key} is 42" in json.dumps(sent[-1]["messages"])
    # Only files of the session's directory.
    outside = {**part, "url": "file:///etc/passwd"}
    refused = api.post(f"/api/sessions/{sid}/prompt", json={"parts": [outside]})
    assert refused.status_code == 400, refused.text


def test_an_image_attachment_reaches_the_model_as_an_image_url_part(
        api: httpx.Client, scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "A tiny image."}]])
    sid = new_session(api)
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    answer = api.post(f"/api/sessions/{sid}/messages", json={"parts": [
        {"type": "text", "text": f"what is this {marker}"},
        {"type": "file", "mime": "image/png", "filename": "dot.png", "url": url}]})
    assert answer.status_code == 200, answer.text
    content = last_user_content(requests_with(scripted, marker)[-1])
    images = [c for c in content if c.get("type") == "image_url"]
    assert images and images[0]["image_url"]["url"] == url
    stored = api.get(f"/api/sessions/{sid}/messages").json()["messages"]
    files = [p for m in stored for p in m["parts"] if p["type"] == "file"]
    assert files and files[0]["filename"] == "dot.png"


def test_an_oversized_or_foreign_attachment_is_refused_and_nothing_is_stored(
        api: httpx.Client) -> None:
    sid = new_session(api)
    big = "data:text/plain;base64," + base64.b64encode(b"x" * (5 * 1024 * 1024 + 3)).decode()
    for route in ("messages", "prompt"):
        response = api.post(f"/api/sessions/{sid}/{route}", json={"parts": [
            {"type": "text", "text": "hi"},
            {"type": "file", "mime": "text/plain", "filename": "big.txt", "url": big}]})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "attachment_too_large"
        assert "big.txt" in response.json()["error"]["message"]
    for mime in ("application/zip", "application/x-msdownload", "nonsense"):
        response = api.post(f"/api/sessions/{sid}/prompt", json={"parts": [
            {"type": "file", "mime": mime, "filename": "a.bin", "url": "data:;base64,AAAA"}]})
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    # Files each under the per-file limit, together over the body limit (RELAY_MAX_BODY_BYTES).
    four_mb = "data:text/plain;base64," + base64.b64encode(b"y" * (4 * 1024 * 1024)).decode()
    response = api.post(f"/api/sessions/{sid}/prompt", json={"parts": [
        {"type": "file", "mime": "text/plain", "filename": f"{n}.txt", "url": four_mb}
        for n in range(2)]})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"
    shapeless = api.post(f"/api/sessions/{sid}/prompt", json={"parts": [{"type": "file"}]})
    assert shapeless.status_code == 422
    assert api.get(f"/api/sessions/{sid}/messages").json()["messages"] == []


def test_another_principals_session_files_and_commands_are_not_found(
        api: httpx.Client) -> None:
    # Ownership itself is covered for every route by test_security; here a ghost session.
    ghost = "ses_" + "0" * 24
    assert api.get(f"/api/sessions/{ghost}/files").status_code == 404
    assert api.post(f"/api/sessions/{ghost}/command",
                    json={"command": "relay-greet"}).status_code == 404
    assert api.get("/api/commands", params={"session": ghost}).status_code == 404
