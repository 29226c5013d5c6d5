"""The web UI against the real stack: streaming, tool cards, panels, prompts, abort, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import (
    new_session,
    open_session,
    page_transcript,
    project_with_config,
    send,
    transcript_from_api,
    wait_idle,
)

pytestmark = pytest.mark.browser


def tool_history(page, part_id: str) -> list[str]:
    return page.evaluate("(id) => window.__seen.tools[id]", part_id)


def test_prompt_streams_text_tools_todos_and_diff(ui: str, api: httpx.Client, new_page,
                                                  scripted: ScriptedProvider,
                                                  opencode: EmbeddedOpencode,
                                                  script_key: str) -> None:
    target = opencode.directory / f"{script_key}.py"
    todos = [{"content": "Write the module", "status": "in_progress", "priority": "high"},
             {"content": "Polish it", "status": "pending", "priority": "low"}]
    # Paced so the page sees the answer grow even on a loaded machine (a frame per delta).
    pieces = [{"text": "Streaming an answer "}] + [{"sleep": 0.4}, {"text": "piece by piece. "}] * 5
    marker = scripted.script(script_key, [
        [{"reasoning": "Plan: todos, then write, then edit."}, *pieces,
         {"tool": "todowrite", "args": {"todos": todos}}],
        [{"tool": "write", "args": {"filePath": str(target), "content": "def main():\n    pass\n"}}],
        [{"tool": "edit", "args": {"filePath": str(target), "oldString": "    pass",
                                   "newString": "    return 42"}}],
        [{"text": "Done.\n\n```python\ndef main():\n    return 42\n```\n"}],
    ])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, f"Make the module {marker}")
    page.wait_for_selector("[data-testid=progress]:not([hidden])")
    wait_idle(page)
    assert page.get_by_test_id("progress").is_hidden()

    # The page shows the messages the relay has, in order.
    shown = page_transcript(page)
    stored = transcript_from_api(api, sid)
    assert [m["id"] for m in shown] == [m["info"]["id"] for m in stored]
    assert shown[0]["role"] == "user" and marker in shown[0]["texts"][0]["text"]
    assert page.get_by_test_id("prompt-input").input_value() == ""

    # The first answer grew delta by delta, in the same element.
    first_text = next(t for m in shown if m["role"] == "assistant" for t in m["texts"])
    lengths = page.evaluate("(id) => window.__seen.texts[id]", first_text["id"])
    assert len(lengths) >= 3 and lengths == sorted(lengths), lengths
    assert first_text["text"].startswith("Streaming an answer piece by piece.")

    # Every tool card went through pending/running to completed.
    tools = [t for m in shown for t in m["tools"]]
    assert [t["tool"] for t in tools] == ["todowrite", "write", "edit"]
    for tool in tools:
        seen = tool_history(page, tool["id"])
        assert seen[-1] == "completed" and {"pending", "running"} & set(seen[:-1]), seen

    # Reasoning is collapsed; code is highlighted.
    reasoning = page.get_by_test_id("part-reasoning").first
    assert reasoning.get_attribute("open") is None
    assert "Plan: todos" in reasoning.text_content()
    assert page.locator("[data-testid=part-text] pre code .hljs-keyword").count() >= 1

    # The todo panel, and the edit card shows its diff without a click.
    items = page.get_by_test_id("todo-item")
    assert [t.strip() for t in items.locator(".todo-text").all_inner_texts()] == \
        ["Write the module", "Polish it"]
    assert items.first.get_attribute("data-status") == "in_progress"
    diff = page.locator("[data-testid=part-tool][data-tool=edit] [data-testid=tool-diff]")
    assert "-    pass" in diff.inner_text() and "+    return 42" in diff.inner_text()
    page.errors.check()


def test_permission_prompt_allow_once(ui: str, api: httpx.Client, new_page,
                                      scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [
        [{"tool": "bash", "args": {"command": "sleep 1; echo relay-$((20+22))",
                                   "description": "Answer slowly"}}],
        [{"text": "The command ran."}],
    ])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    prompt = page.get_by_test_id("permission-prompt")
    prompt.wait_for()
    assert prompt.get_attribute("data-permission") == "bash"
    assert "relay-$((20+22))" in prompt.inner_text()
    assert "permission" in page.get_by_test_id("progress").inner_text()
    page.get_by_test_id("permission-allow-once").click()
    prompt.wait_for(state="detached")

    card = page.locator("[data-testid=part-tool][data-tool=bash]")
    page.wait_for_selector("[data-testid=part-tool][data-tool=bash][data-status=completed]")
    seen = tool_history(page, card.get_attribute("data-part-id"))
    assert seen[-2:] == ["running", "completed"], seen
    assert "Answer slowly" in card.locator(".tool-title").inner_text()
    card.locator("summary").click()
    assert "relay-42" in card.locator(".tool-output").inner_text()
    wait_idle(page)
    assert api.get(f"/api/sessions/{sid}/requests").json()["permissions"] == []
    page.errors.check()


def test_permission_reject_shows_the_tool_error(ui: str, api: httpx.Client, new_page,
                                                scripted: ScriptedProvider,
                                                script_key: str) -> None:
    marker = scripted.script(script_key, [
        [{"tool": "bash", "args": {"command": "echo never", "description": "Not allowed"}}],
        [{"text": "Understood."}],
    ])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    page.get_by_test_id("permission-reject").click()
    page.wait_for_selector("[data-testid=part-tool][data-tool=bash][data-status=error]")
    error = page.locator("[data-testid=part-tool][data-tool=bash] [data-testid=tool-error]")
    assert error.is_visible() and "reject" in error.inner_text().lower()
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]")
    page.errors.check()


def test_question_prompt_is_answered_in_the_page(ui: str, api: httpx.Client, new_page,
                                                 scripted: ScriptedProvider,
                                                 opencode: EmbeddedOpencode, tmp_path: Path,
                                                 script_key: str) -> None:
    # The stack's project denies the question tool to the build agent; this one allows it.
    project = project_with_config(opencode.directory, tmp_path / "asking", question="allow")
    marker = scripted.script(script_key, [
        [{"tool": "question", "args": {"questions": [{
            "question": "Which greeting?", "header": "Greeting",
            "options": [{"label": "hello", "description": "Plain"},
                        {"label": "hi", "description": "Casual"}]}]}}],
        [{"text": "Going with it."}],
    ])
    created = api.post("/api/sessions", json={"title": "question", "directory": str(project)})
    sid = created.json()["id"]
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    form = page.get_by_test_id("question-prompt")
    form.wait_for()
    assert "Which greeting?" in form.inner_text()
    form.get_by_test_id("question-option").filter(has_text="hi").click()
    form.get_by_test_id("question-submit").click()
    form.wait_for(state="detached")
    page.wait_for_selector("[data-testid=part-tool][data-tool=question][data-status=completed]")
    wait_idle(page)
    stored = transcript_from_api(api, sid)
    question = next(p for m in stored for p in m["parts"] if p.get("tool") == "question")
    assert '"hi"' in question["state"]["output"]
    page.errors.check()


def test_abort_a_slow_prompt(ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider,
                             script_key: str) -> None:
    slow = [{"text": "Working slowly "}] + [{"sleep": 0.3}, {"text": "and on "}] * 60
    marker = scripted.script(script_key, [slow])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    page.wait_for_selector("[data-role=assistant] [data-testid=part-text]:has-text('and on')")
    abort = page.get_by_test_id("abort-button")
    assert abort.is_visible()
    abort.click()
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]")
    assert abort.is_hidden()
    error = page.locator("[data-role=assistant] [data-testid=message-error]")
    error.wait_for()
    assert error.inner_text() == "Stopped."
    assert page.get_by_test_id("session-error").is_hidden()  # an abort is not an error
    assert api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle"
    page.errors.check()


def user_text_of(body: dict) -> str:
    """The last user message of a chat-completions request, as one string."""
    user = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = user["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


def test_pickers_choose_the_agent_and_model_of_a_prompt(ui: str, api: httpx.Client, new_page,
                                                        scripted: ScriptedProvider,
                                                        script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "Planned."}]])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    agents = page.get_by_test_id("agent-select")
    models = page.get_by_test_id("model-select")
    # The pickers list what opencode has: its primary agents, and the models by provider.
    page.wait_for_selector("[data-testid=agent-select] option[data-value=plan]",
                           state="attached")
    page.wait_for_selector("[data-testid=model-select] option[data-value='scripted/m2']",
                           state="attached")
    assert {"build", "plan"} <= set(agents.locator("option").evaluate_all(
        "(os) => os.map((o) => o.value)"))
    group = models.locator("optgroup[label=Scripted] option")
    assert group.evaluate_all("(os) => os.map((o) => o.value)") == ["scripted/m", "scripted/m2"]

    # The config's default is build on scripted/m: pick the other two.
    agents.select_option("plan")
    models.select_option("scripted/m2")
    send(page, f"Plan it {marker}")
    wait_idle(page)
    served = [b for b in scripted.book.requests if b.get("tools") and marker in user_text_of(b)]
    assert served, "the scripted provider never saw the prompt"
    for body in served:
        assert body["model"] == "m2"
        # opencode's plan agent adds its reminder to the user's message; build does not.
        assert "Plan Mode - System Reminder" in user_text_of(body)
    assert "Planned." in page_transcript(page)[-1]["texts"][0]["text"]
    page.errors.check()


def test_errors_are_shown_in_plain_words(ui: str, api: httpx.Client, new_page,
                                         scripted: ScriptedProvider, script_key: str) -> None:
    # The model provider keeps failing: opencode retries, and the page says so.
    marker = scripted.script(script_key, [[{"fail": 500}]])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    page.wait_for_selector("[data-testid=status-indicator][data-status=retry]", timeout=60_000)
    progress = page.get_by_test_id("progress").inner_text()
    assert progress.startswith("Retrying") and "scripted failure" in progress
    page.get_by_test_id("abort-button").click()
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]")

    # A request the relay refuses (an agent that no longer exists): its message in a notice,
    # and the prompt stays in the box. The pickers list only real agents, so the agent is
    # swapped on the way out, and the relay's real answer comes back.
    def ghost_agent(route) -> None:
        body = {**json.loads(route.request.post_data), "agent": "ghost"}
        route.continue_(post_data=json.dumps(body))

    page.route(re.compile(rf"/api/sessions/{sid}/prompt$"), ghost_agent)
    send(page, "hello")
    # Other notices may come first on a loaded machine (a slow health probe): find this one.
    toast = page.get_by_test_id("toast").filter(has_text="unknown agent 'ghost'").first
    toast.wait_for()
    assert "unknown agent 'ghost'" in toast.inner_text()
    assert page.get_by_test_id("prompt-input").input_value() == "hello"

    # The session is deleted elsewhere: the page lets go of it.
    api.delete(f"/api/sessions/{sid}")
    page.wait_for_url(f"{ui}/")
    page.goto(f"{ui}/?session={sid}")
    page.get_by_text("This session does not exist.").wait_for()
    page.errors.check()


def test_subagent_permission_is_answered_on_the_parent(ui: str, api: httpx.Client, new_page,
                                                       scripted: ScriptedProvider,
                                                       opencode: EmbeddedOpencode,
                                                       script_key: str) -> None:
    child_marker = scripted.script(f"{script_key}-child", [
        [{"tool": "bash", "args": {"command": "echo from-child", "description": "Child echo"}}],
        [{"text": "Child done."}],
    ])
    marker = scripted.script(script_key, [
        [{"tool": "task", "args": {"description": "Delegate the echo", "subagent_type": "general",
                                   "prompt": f"Run the echo {child_marker}"}}],
        [{"text": "The sub-agent finished."}],
    ])
    sid = new_session(api)
    page = new_page()
    open_session(page, ui, sid)
    send(page, marker)
    prompt = page.get_by_test_id("permission-prompt")
    prompt.wait_for(timeout=60_000)
    assert "sub-agent" in prompt.inner_text() and "echo from-child" in prompt.inner_text()
    page.wait_for_selector("[data-testid=part-tool][data-tool=task][data-status=running]")
    page.get_by_test_id("permission-allow-once").click()
    prompt.wait_for(state="detached")
    page.wait_for_selector("[data-testid=part-tool][data-tool=task][data-status=completed]",
                           timeout=60_000)
    wait_idle(page)
    # Only the parent's messages are in its transcript; the task card links to the child.
    shown = page_transcript(page)
    assert [m["id"] for m in shown] == [m["info"]["id"] for m in transcript_from_api(api, sid)]
    card = page.locator("[data-testid=part-tool][data-tool=task]")
    card.locator("summary").click()
    link = card.get_by_text("Open sub-agent session")
    link.click()
    page.wait_for_url(re.compile(r"\?session=ses"))
    child = page.url.split("session=")[1]
    assert child != sid
    assert api.get(f"/api/sessions/{child}").json()["session"]["parentID"] == sid
    page.wait_for_selector("[data-testid=part-tool][data-tool=bash][data-status=completed]")
    page.screenshot(path=str(opencode.directory.parent / "ui-subagent-child.png"))
    page.errors.check()
