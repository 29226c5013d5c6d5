"""The composer: slash commands, @-mentions and attachments, picked in the real page."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import new_session, open_session, shot
from tests.support.stack import wait_for

pytestmark = pytest.mark.browser

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def model_requests(scripted: ScriptedProvider, marker: str) -> list[dict]:
    return [r for r in scripted.book.requests if r.get("tools") and marker in json.dumps(r)]


def test_a_user_command_picked_with_the_keyboard_reaches_the_model(
        ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "Hello there, warmly."}]])
    page = new_page()
    open_session(page, ui, new_session(api))
    box = page.get_by_test_id("prompt-input")
    box.click()
    box.press_sequentially("/")
    menu = page.get_by_test_id("command-menu")
    menu.wait_for()
    # The page's own actions and opencode's commands, in one list.
    values = lambda: page.get_by_test_id("command-item").evaluate_all(  # noqa: E731
        "els => els.map(e => e.dataset.value)")
    wait_for(lambda: "relay-greet" in values(), 10, "opencode's commands in the menu")
    assert {"new", "export", "init"} <= set(values())
    box.press_sequentially("relay-g")
    assert values() == ["relay-greet"]
    shot(page, "command-menu")
    box.press("Escape")
    assert menu.is_hidden()
    box.press("Backspace")
    box.press_sequentially("g")  # typing opens it again: /relay-g
    menu.wait_for()
    box.press("ArrowDown")
    box.press("ArrowUp")
    box.press("Tab")
    assert box.input_value() == "/relay-greet "
    box.press_sequentially(f"Ada {marker}")
    box.press("Enter")
    page.locator("[data-testid=part-text]", has_text="Hello there, warmly.").wait_for()
    sent = model_requests(scripted, marker)
    user = [m for m in sent[-1]["messages"] if m["role"] == "user"][-1]
    assert f"Please greet Ada {marker} warmly." in json.dumps(user)
    page.errors.check()


def test_a_mentioned_file_and_an_attached_image_reach_the_model(
        ui: str, api: httpx.Client, new_page, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str, tmp_path: Path) -> None:
    name = f"ui-mention-{script_key}.txt"
    (opencode.directory / name).write_text(f"{script_key} says the answer is 42\n")
    marker = scripted.script(script_key, [[{"text": "Got the file and the image."}]])
    page = new_page()
    open_session(page, ui, new_session(api))
    box = page.get_by_test_id("prompt-input")
    box.click()
    box.press_sequentially(f"read @ui-mention-{script_key}")
    page.get_by_test_id("mention-menu").wait_for()
    item = page.locator(f"[data-testid=mention-item][data-value='{name}']")
    item.wait_for()
    shot(page, "mention-menu")
    box.press("Enter")
    assert box.input_value() == f"read @{name} "
    assert page.get_by_test_id("mention-menu").is_hidden()

    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-button").click()
    chooser.value.set_files(str(image))
    chip = page.get_by_test_id("attachment-chip")
    chip.wait_for()
    assert "dot.png" in chip.inner_text()
    box.press_sequentially(marker)
    shot(page, "attachment-chip")
    box.press("Enter")
    page.locator("[data-testid=part-text]", has_text="Got the file and the image.").wait_for()
    assert chip.count() == 0  # sent: the composer is empty again
    page.locator("[data-testid=part-file] img").first.wait_for()
    shot(page, "transcript-attachments")
    sent = model_requests(scripted, marker)[-1]
    text = json.dumps(sent["messages"])
    assert f"{script_key} says the answer is 42" in text
    user = [m for m in sent["messages"] if m["role"] == "user"][-1]
    images = [c for c in user["content"] if isinstance(c, dict) and c.get("type") == "image_url"]
    assert images and images[0]["image_url"]["url"].startswith("data:image/png;base64,")
    page.errors.check()


def test_a_refused_attachment_is_reported_and_can_be_removed(
        ui: str, api: httpx.Client, new_page, tmp_path: Path) -> None:
    page = new_page()
    open_session(page, ui, new_session(api))
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK\x03\x04")
    page.get_by_test_id("attach-input").set_input_files(str(archive))
    page.get_by_test_id("attachment-chip").wait_for()
    page.get_by_test_id("prompt-input").fill("what is in it?")
    page.get_by_test_id("prompt-input").press("Enter")
    toast = page.get_by_test_id("toast").filter(has_text="only images")
    toast.wait_for()
    page.get_by_test_id("attachment-remove").click()
    assert page.get_by_test_id("attachment-chip").count() == 0
    page.errors.check()


def test_new_and_export_actions_from_the_menu(ui: str, api: httpx.Client, new_page) -> None:
    page = new_page()
    sid = new_session(api)
    open_session(page, ui, sid)
    box = page.get_by_test_id("prompt-input")
    box.click()
    box.press_sequentially("/expo")
    page.locator("[data-testid=command-item][data-value=export]").wait_for()
    with page.expect_download() as download:
        box.press("Enter")
    # /export downloads the relay's Markdown export of the session (the header's Export menu too).
    saved = Path(download.value.path()).read_text()
    assert saved.startswith("# ") and f"`{sid}`" in saved, saved[:200]
    assert download.value.suggested_filename.endswith(f"{sid}.md")
    box.press_sequentially("/new")
    page.locator("[data-testid=command-item][data-value=new]").wait_for()
    box.press("Enter")
    page.wait_for_function(f"() => location.search.includes('ses') && !location.search.includes('{sid}')")
    page.errors.check()


def test_pasted_and_dropped_files_become_chips(ui: str, api: httpx.Client, new_page) -> None:
    page = new_page()
    open_session(page, ui, new_session(api))
    page.get_by_test_id("prompt-input").evaluate("""(box) => {
      const file = (name, type) => new File(['hello'], name, { type });
      const pasted = new DataTransfer();
      pasted.items.add(file('pasted.txt', 'text/plain'));
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
      const dropped = new DataTransfer();
      dropped.items.add(file('dropped.pdf', 'application/pdf'));
      box.closest('.composer').dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    }""")
    chips = page.get_by_test_id("attachment-chip")
    wait_for(lambda: chips.count() == 2, 10, "two chips")
    assert [c.get_attribute("title") for c in chips.all()] == [
        "pasted.txt (text/plain)", "dropped.pdf (application/pdf)"]
    shot(page, "pasted-and-dropped")
    page.errors.check()


def test_a_command_typed_in_full_runs_without_the_menu(
        ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider, script_key: str) -> None:
    marker = scripted.script(script_key, [[{"text": "Hello Bob."}]])
    page = new_page()
    open_session(page, ui, new_session(api))
    box = page.get_by_test_id("prompt-input")
    box.fill(f"/relay-greet Bob {marker}")  # one input event: the menu never opens
    box.press("Enter")
    page.locator("[data-testid=part-text]", has_text="Hello Bob.").wait_for()
    user = [m for m in model_requests(scripted, marker)[-1]["messages"] if m["role"] == "user"][-1]
    assert f"Please greet Bob {marker} warmly." in json.dumps(user)
    page.errors.check()
