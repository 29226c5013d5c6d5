"""7. Files: the first level of a big project's tree, through the relay and painted in the browser.

A project folder of N files (full: 10,000, tiny: 2,000; all in its top folder, so the first
level is the whole project and the page draws every entry) beside real opencode's own project.
The machine is shared, so every figure's baseline is timed in turns with it.

- `files.tree_relay_ms`: the relay's `GET /api/sessions/{id}/tree` of that folder (full body,
  parsed), median of 7 after 4 warm-ups. Baseline: opencode's own `GET /file?path=` of the same
  folder, timed the same way, in turns with it.
- `files.tree_paint_ms`: Chromium opens the session and waits until the page's start-up calls
  are done; then the tree's refresh button reads and draws the top folder again (the same code
  path as the first read): from the start of that tree request (Resource Timing) until the
  tree lists every entry with the rows in view in the DOM (the tree draws only those, and a few
  around them) and a frame has been painted after it (two animation frames), median of 3
  pages. Baseline: opencode's `GET /file`, timed from Python just before and after. Target:
  within 2x.
- `files.tree_paint_on_load_ms`: the same from the first read, on page load: the page's other
  start-up calls (providers, agents, health) keep opencode busy at the same time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .browser import ARGS, CHROMIUM, ensure_ui
from .harness import Bench, median

FILES = {"tiny": 2_000, "small": 5_000, "full": 10_000}
PAGES = {"tiny": 1, "small": 3, "full": 3}  # tiny only checks that every figure is reported
ROUNDS = {"tiny": 3, "small": 7, "full": 7}

PROBE = """
((expected) => {
  // Painted: the tree has read (aria-busy false) and lists every entry (data-rows), its rows in
  // view are in the DOM, and a frame has been drawn after that (two animation frames).
  // `waitBusy`: first see the tree busy again (a refresh), then wait for it to be done.
  const seen = { paintedAt: null, rowsAt: null, inflight: 0, waitBusy: false };
  Object.defineProperty(window, '__files', { value: seen });
  const fetch = window.fetch;
  window.fetch = (...args) => {
    seen.inflight++;
    return fetch(...args).finally(() => { seen.inflight--; });
  };
  const check = () => {
    const tree = document.querySelector('[data-testid=file-tree]');
    if (!tree || seen.paintedAt !== null) return;
    const busy = tree.getAttribute('aria-busy') === 'true';
    if (seen.waitBusy) { if (busy) seen.waitBusy = false; return; }
    if (busy || Number(tree.getAttribute('data-rows')) < expected
        || !tree.querySelector('[data-testid=file-node]')) return;
    seen.paintedAt = -1;
    seen.rowsAt = performance.now();
    const painted = () => { seen.paintedAt = performance.now(); };
    requestAnimationFrame(() => requestAnimationFrame(painted));
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ['aria-busy', 'data-rows'] });
})(%d);
"""


def make_project(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (directory / f"file{i:05d}.txt").write_text(f"{i}\n")
    return directory


def timed_get(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[float, int]:
    """ms of one GET, its body read and parsed; and how many entries it listed."""
    started = time.perf_counter()
    response = client.get(url, params=params)
    response.raise_for_status()
    body = response.json()
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(body["entries"] if isinstance(body, dict) else body)


def measure_routes(relay_url: str, opencode_url: str, project: Path,
                   rounds: int = 7) -> tuple[str, list[float], list[float], int]:
    """A session in the project; then opencode's GET /file and the relay's tree route of its
    top folder, warmed up (opencode's first reads of a new directory are slow), then timed in
    turns so both see the same machine: ms of each, and how many entries they listed."""
    direct_ms: list[float] = []
    relay_ms: list[float] = []
    listed = 0
    with httpx.Client(base_url=relay_url, timeout=120) as api, \
            httpx.Client(base_url=opencode_url, timeout=120) as direct:
        created = api.post("/api/sessions", json={"title": "files bench",
                                                  "directory": str(project)})
        created.raise_for_status()
        sid = str(created.json()["id"])
        for i in range(4 + rounds):
            took, listed = timed_get(direct, "/file", {"path": "", "directory": str(project)})
            took_relay, relayed = timed_get(api, f"/api/sessions/{sid}/tree", {"path": ""})
            assert relayed == listed, (relayed, listed)
            if i >= 4:
                direct_ms.append(took)
                relay_ms.append(took_relay)
    return sid, direct_ms, relay_ms, listed


TIMES = """() => {
  const r = performance.getEntriesByType('resource').filter(e => e.name.includes('/tree?path='))
    .pop();
  const s = window.__files;
  return { response: r.responseEnd - r.startTime, rows: s.rowsAt - r.startTime,
           painted: s.paintedAt - r.startTime };
}"""
SETTLED = """async () => {
  // No request of the page's in flight for a second (its start-up calls are done); at most 60 s.
  let quiet = 0;
  for (let i = 0; i < 240 && quiet < 4; i++) {
    quiet = window.__files.inflight ? 0 : quiet + 1;
    await new Promise((done) => setTimeout(done, 250));
  }
}"""


async def paint(browser: Any, url: str, sid: str, count: int,
                baseline: Callable[[], float]) -> dict[str, Any]:
    """Times from the start of a tree request to its response's end, to every row in the DOM,
    and to the frame painted after them: on page load (beside the page's other start-up
    calls, which keep opencode busy: providers, agents, health), and once the page has settled
    (the tree's refresh button reads and draws the top folder again, the same code path as the
    first read). opencode's own GET /file is timed just before and after the settled one."""
    page = await browser.new_page(bypass_csp=True, viewport={"width": 1360, "height": 880})
    try:
        await page.add_init_script(PROBE % count)
        await page.goto(f"{url}/?session={sid}")
        await page.wait_for_function("window.__files.paintedAt > 0", timeout=120_000)
        on_load = await page.evaluate(TIMES)
        await page.evaluate(SETTLED)
        before = await asyncio.to_thread(baseline)
        await page.evaluate("() => { Object.assign(window.__files, "
                            "{ paintedAt: null, waitBusy: true }); }")
        await page.get_by_test_id("file-tree-refresh").click()
        await page.wait_for_function("window.__files.paintedAt > 0", timeout=120_000)
        settled = await page.evaluate(TIMES)
        after = await asyncio.to_thread(baseline)
        return {"load": on_load, "settled": settled, "direct": (before + after) / 2}
    finally:
        await page.close()


async def run(bench: Bench) -> None:
    count = FILES.get(bench.size.name, 10_000)
    print(f"files: the first level of a {count}-file project", flush=True)
    _provider, opencode = bench.opencode
    project = await asyncio.to_thread(make_project,
                                      opencode.directory.parent / "files-bench", count)
    relay = bench.relay(opencode.url, "files")
    rounds, pages = ROUNDS.get(bench.size.name, 7), PAGES.get(bench.size.name, 3)
    sid, direct_ms, relay_ms, listed = await asyncio.to_thread(
        measure_routes, relay.url, opencode.url, project, rounds)
    what_base = f"opencode's GET /file of the same folder ({listed} entries), timed in turns"
    bench.add("files.tree_relay_ms", f"relay GET …/tree of a {count}-file folder, full body "
              f"parsed (median of {rounds}, in turns with the baseline)", median(relay_ms), "ms",
              median(direct_ms), what_base,
              note="per-turn ratios: " + ", ".join(
                  f"{r / d:.2f}" for r, d in zip(relay_ms, direct_ms, strict=True)))
    reason = await asyncio.to_thread(ensure_ui)
    if reason:
        bench.skip("files.tree_paint_ms", "the tree's first level painted in the browser", "ms",
                   what_base, reason, target="≤ 2× opencode's GET /file")
        bench.skip("files.tree_paint_on_load_ms", "the same on page load", "ms", what_base,
                   reason)
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            with httpx.Client(base_url=opencode.url, timeout=120) as direct:
                def baseline() -> float:
                    return timed_get(direct, "/file", {"path": "", "directory": str(project)})[0]
                runs = [await paint(browser, relay.url, sid, count, baseline) for _ in range(pages)]
        finally:
            await browser.close()

    def note(kind: str) -> str:
        return "tree response / rows in the DOM / painted (opencode's GET /file), per run: " + \
            "; ".join(f"{r[kind]['response']:.0f} / {r[kind]['rows']:.0f} / "
                      f"{r[kind]['painted']:.0f} ({r['direct']:.0f}) ms" for r in runs)

    base_ms = median([r["direct"] for r in runs])
    what_base = (f"opencode's GET /file of the same folder ({listed} entries), timed from "
                 "Python just before and after each settled run")
    bench.add("files.tree_paint_ms", f"the tree's first level ({count} rows) painted in "
              "Chromium once the page has settled, from the start of its tree request "
              f"(median of {pages} pages)", median([r["settled"]["painted"] for r in runs]), "ms",
              base_ms, what_base, target="≤ 2× opencode's GET /file",
              met=lambda value, baseline: baseline is not None and value <= 2 * baseline,
              note=note("settled"))
    bench.add("files.tree_paint_on_load_ms", f"the same on page load ({count} rows), beside "
              f"the page's other start-up calls to opencode (median of {pages})",
              median([r["load"]["painted"] for r in runs]), "ms", base_ms, what_base,
              note=note("load"))
