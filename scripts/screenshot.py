"""Takes docs/screenshot.png: a real session (real opencode, scripted LLM) in the web UI.

Run with `.venv/bin/python scripts/screenshot.py` after `make setup`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencode_relay.launch.embedded import EmbeddedRedis  # noqa: E402
from opencode_relay.testing.scripted_provider import ScriptedProvider  # noqa: E402
from tests.support.stack import (  # noqa: E402
    RelayProcess,
    start_opencode,
    wait_for,
    workspace_env,
)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

ANSWER = """Here is the plan, and the script is in place:

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

Run it with `python greet.py`."""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ocr-shot-"))
    redis = EmbeddedRedis(work / "redis").start()
    provider = ScriptedProvider().start()
    opencode = start_opencode(work / "oc", provider)
    relay = RelayProcess(redis.url, opencode.url, work / "relay.log",
                         extra_env=workspace_env(opencode.directory)).start()
    try:
        api = httpx.Client(base_url=relay.url, timeout=60)
        target = opencode.directory / "greet.py"
        todos = [{"content": "Write greet.py", "status": "completed", "priority": "high"},
                 {"content": "Run it once", "status": "in_progress", "priority": "medium"},
                 {"content": "Add a test", "status": "pending", "priority": "low"}]
        marker = provider.script("shot", [
            [{"reasoning": "The user wants a small greeting script; plan first, then write it."},
             {"tool": "todowrite", "args": {"todos": todos}}],
            [{"text": "Writing the script."},
             {"tool": "write", "args": {"filePath": str(target), "content":
                                        'def greet(name: str) -> str:\n'
                                        '    return f"Hello, {name}!"\n'}}],
            [{"tool": "bash", "args": {"command": "python3 -c 'print(42)'",
                                       "description": "Run a quick check"}}],
            [{"text": ANSWER}],
        ])
        sid = api.post("/api/sessions", json={"title": "Greeting script"}).json()["id"]
        api.post(f"/api/sessions/{sid}/prompt", json={"text": f"Write a greeting script {marker}"})
        asked = wait_for(lambda: api.get(f"/api/sessions/{sid}/requests").json()["permissions"],
                         60, "the bash permission request")
        api.post(f"/api/sessions/{sid}/permissions/{asked[0]['id']}", json={"reply": "once"})
        wait_for(lambda: api.get(f"/api/sessions/{sid}/status").json()["status"]["type"] == "idle"
                 and len(api.get(f"/api/sessions/{sid}/messages").json()["messages"]) >= 5,
                 60, "the answer")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            page.goto(f"{relay.url}/?session={sid}")
            page.wait_for_selector("[data-testid=connection-status][data-state=open]")
            page.wait_for_selector("[data-testid=part-tool][data-tool=bash][data-status=completed]")
            page.wait_for_selector("[data-testid=file-node][data-path='greet.py']")
            time.sleep(0.5)
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
            browser.close()
        print("wrote docs/screenshot.png")
    finally:
        relay.stop()
        opencode.stop()
        provider.stop()
        redis.stop()


if __name__ == "__main__":
    main()
