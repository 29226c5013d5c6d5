"""Small helpers shared by the browser tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import wait_for

# Injected before the app runs: records every state the page showed, so a test can check a
# sequence (running -> completed, text growing) without racing the screen.
RECORDER = """
(() => {
  const seen = { tools: {}, texts: {}, connection: [], status: [], firstMessageAt: null };
  Object.defineProperty(window, '__seen', { value: seen });
  const push = (list, value) => { if (list[list.length - 1] !== value) list.push(value); };
  const scan = () => {
    for (const el of document.querySelectorAll('[data-testid=part-tool]')) {
      push(seen.tools[el.dataset.partId] ||= [], el.dataset.status);
    }
    for (const el of document.querySelectorAll('[data-testid=part-text]')) {
      push(seen.texts[el.dataset.partId] ||= [], el.textContent.length);
    }
    if (seen.firstMessageAt === null && document.querySelector('[data-testid=message]')) {
      seen.firstMessageAt = performance.now();
    }
    const conn = document.querySelector('[data-testid=connection-status]');
    if (conn) push(seen.connection, conn.dataset.state);
    const status = document.querySelector('[data-testid=status-indicator]');
    if (status) push(seen.status, status.dataset.status);
  };
  new MutationObserver(scan).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true,
  });
})();
"""


def new_session(api: httpx.Client, title: str = "browser test") -> str:
    response = api.post("/api/sessions", json={"title": title})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def open_session(page: Any, base: str, sid: str, record: bool = True) -> None:
    if record:
        page.add_init_script(RECORDER)
    page.goto(f"{base}/?session={sid}")
    page.wait_for_selector("[data-testid=session-title]:not(:text('Loading…'))")
    page.wait_for_selector("[data-testid=connection-status][data-state=open]")


def send(page: Any, text: str) -> None:
    box = page.get_by_test_id("prompt-input")
    box.fill(text)
    box.press("Enter")


def wait_idle(page: Any, timeout: float = 60_000) -> None:
    """Waits until the page has shown the session busy and then idle again."""
    page.wait_for_function("() => window.__seen.status.includes('busy')", timeout=timeout)
    page.wait_for_selector("[data-testid=status-indicator][data-status=idle]", timeout=timeout)


def transcript_from_api(api: httpx.Client, sid: str) -> list[dict[str, Any]]:
    return api.get(f"/api/sessions/{sid}/messages").json()["messages"]


def wait_api_idle(api: httpx.Client, sid: str, timeout: float = 60) -> None:
    wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle",
             timeout, "the session to be idle")


def page_transcript(page: Any) -> list[dict[str, Any]]:
    """What the page shows: messages with their text parts and tool cards, in order."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid=message]')].map(m => ({
        id: m.dataset.messageId, role: m.dataset.role,
        texts: [...m.querySelectorAll('[data-testid=part-text]')].filter(p => !p.hidden)
                 .map(p => ({id: p.dataset.partId, text: p.textContent})),
        tools: [...m.querySelectorAll('[data-testid=part-tool]')]
                 .map(p => ({id: p.dataset.partId, tool: p.dataset.tool, status: p.dataset.status})),
    }))""")


def project_with_config(opencode_dir: Path, target: Path, **permission: str) -> Path:
    """A project directory of its own, with the stack's opencode config (scripted model) and
    extra permission rules."""
    config = json.loads((opencode_dir / "opencode.json").read_text())
    config["permission"].update(permission)
    target.mkdir(parents=True, exist_ok=True)
    (target / "opencode.json").write_text(json.dumps(config, indent=2))
    return target


SHOTS = os.environ.get("RELAY_TEST_SCREENSHOTS")  # a folder: keep screenshots to look at


def shot(page: Any, name: str) -> None:
    """Keeps a screenshot when RELAY_TEST_SCREENSHOTS names a folder (to look at a UI change)."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))
