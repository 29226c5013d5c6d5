"""6. Browser: first paint of a big session, and how long a text delta takes to reach the screen.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright for Python. Skipped with a note
when the UI is not built (scripts/build-web.sh) or Chromium is missing.

- First paint: navigation start -> the first message element of an N-message session in the
  DOM. Baseline: the same page fetching and parsing that session's JSON itself (what any UI
  must at least do).
- Delta to screen: the synthetic upstream streams deltas into a text part of a session the page
  shows; each delta carries its wall-clock emit time. A MutationObserver notes when each token
  is in the part's text. Baseline: when the same deltas arrived on the page's EventSource.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx

from .harness import ROOT, Bench, median, percentile, wait_for
from .history import seed_session

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
DIST = ROOT / "src" / "opencode_relay" / "web" / "dist" / "index.html"

PROBE = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const seen = { firstMessageAt: null, arrived: {}, emitted: {}, shown: {}, top: -1 };
  Object.defineProperty(window, '__bench', { value: seen });
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const t = now();
        const m = /"delta":"tok(\\d{5}) ".*"benchW":(\\d+)/.exec(e.data);
        if (m) { seen.arrived[+m[1]] = t; seen.emitted[+m[1]] = +m[2] / 1e6; }
      });
    }
  };
  const scan = () => {
    if (seen.firstMessageAt === null && document.querySelector('[data-testid=message]')) {
      seen.firstMessageAt = performance.now();
    }
    const t = now();
    for (const el of document.querySelectorAll('[data-testid=part-text]')) {
      const found = el.textContent.match(/tok(\\d{5})/g);
      if (!found) continue;
      const top = +found[found.length - 1].slice(3);
      for (let i = seen.top + 1; i <= top; i++) seen.shown[i] = t;
      if (top > seen.top) seen.top = top;
    }
  };
  new MutationObserver(scan).observe(document, {
    subtree: true, childList: true, characterData: true });
})();
"""


def skip_all(bench: Bench, note: str) -> None:
    bench.skip("browser.first_paint_ms", "first paint of a big session", "ms",
               "the page fetching + parsing the same JSON", note)
    bench.skip("browser.delta_to_screen_ms", "p50 delta emit -> text on screen", "ms",
               "same deltas arriving on the page's EventSource", note)


def ensure_ui() -> str | None:
    if not DIST.is_file():
        try:
            subprocess.run(["bash", str(ROOT / "scripts" / "build-web.sh")], cwd=ROOT,
                           timeout=300, check=False, capture_output=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"could not build the UI: {exc}"
    if not DIST.is_file():
        return "the web UI is not built (scripts/build-web.sh produced no dist/index.html)"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (scripts/install-browser.sh)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright for Python is not installed"
    return None


async def first_paint(browser: Any, url: str, sid: str) -> tuple[float, float]:
    page = await browser.new_page(bypass_csp=True)  # the probe evaluates scripts
    try:
        await page.add_init_script(PROBE)
        await page.goto(f"{url}/?session={sid}")
        await page.wait_for_function("window.__bench.firstMessageAt !== null", timeout=60_000)
        painted = await page.evaluate("window.__bench.firstMessageAt")
        fetched = await page.evaluate("""async (sid) => {
            const t = performance.now();
            const r = await fetch(`/api/sessions/${sid}/messages`);
            await r.json();
            return performance.now() - t; }""", sid)
        return painted, fetched
    finally:
        await page.close()


async def big_session(bench: Bench) -> tuple[str, str, int] | None:
    history = bench.extra.get("history")
    if history is None:
        return None
    relay = history["relay"]
    wanted = bench.size.browser_messages
    if history["messages"] >= wanted:
        return relay.url, history["session"], history["messages"]
    sid = await asyncio.to_thread(seed_session, bench, wanted)
    relay = bench.relay(bench.opencode[1].url, "browser-history")  # imports it on connect
    with httpx.Client(base_url=relay.url, timeout=120) as api:
        await asyncio.to_thread(
            wait_for, lambda: len(api.get(f"/api/sessions/{sid}/messages")
                                  .json()["messages"]) >= wanted, 180,
            "the relay to import the browser session")
    return relay.url, sid, wanted


async def delta_to_screen(bench: Bench, browser: Any) -> dict[str, list[float]]:
    relay = bench.extra.get("fanout_relay") or bench.relay(bench.upstream.url, "browser")
    count = 40 if bench.size.name == "tiny" else 200
    with httpx.Client(base_url=relay.url, timeout=30) as api:
        before = await asyncio.to_thread(
            lambda: {s["id"] for s in api.get("/api/sessions", params={"limit": 1000})
                     .json()["sessions"]})
        paced = asyncio.create_task(bench.upstream.paced(count, 50.0, hold=10.0))

        def new_session() -> str | None:
            found = [s["id"] for s in api.get("/api/sessions", params={"limit": 1000})
                     .json()["sessions"] if s["id"] not in before]
            return found[0] if found else None

        sid = await asyncio.to_thread(wait_for, new_session, 10, "the latency session")
    page = await browser.new_page(bypass_csp=True)  # the probe evaluates scripts
    try:
        await page.add_init_script(PROBE)
        await page.goto(f"{relay.url}/?session={sid}")
        await page.wait_for_selector("[data-testid=connection-status][data-state=open]",
                                     timeout=10_000)
        await paced
        await page.wait_for_function(f"window.__bench.top >= {count - 1}", timeout=30_000)
        seen = await page.evaluate("window.__bench")
    finally:
        await page.close()
    screen, arrive = [], []
    for key, emitted in seen["emitted"].items():
        if key in seen["shown"]:
            screen.append(seen["shown"][key] - emitted)
            arrive.append(seen["arrived"][key] - emitted)
    return {"screen": screen, "arrive": arrive}


async def run(bench: Bench) -> None:
    print("browser: first paint and delta to screen", flush=True)
    reason = await asyncio.to_thread(ensure_ui)
    if reason:
        skip_all(bench, reason)
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            target = await big_session(bench)
            if target is None:
                bench.skip("browser.first_paint_ms", "first paint of a big session", "ms",
                           "the page fetching + parsing the same JSON",
                           "needs the history benchmark")
            else:
                url, sid, messages = target
                runs = [await first_paint(browser, url, sid) for _ in range(3)]
                bench.add("browser.first_paint_ms", f"first message element of a {messages}-"
                          "message session in the DOM, from navigation start (median of 3)",
                          median([r[0] for r in runs]), "ms", median([r[1] for r in runs]),
                          "the page fetching + parsing that session's JSON")
            found = await delta_to_screen(bench, browser)
            bench.add("browser.delta_to_screen_ms", "p50 time from a delta leaving the upstream "
                      "to its text in the page's DOM (50 deltas/s)",
                      percentile(found["screen"], 50), "ms", percentile(found["arrive"], 50),
                      "same deltas arriving on the page's EventSource",
                      note=f"p99 {percentile(found['screen'], 99):.1f} ms on screen, "
                           f"{percentile(found['arrive'], 99):.1f} ms on the EventSource; "
                           f"{len(found['screen'])} deltas")
        finally:
            await browser.close()
