"""The installable app in Chromium: manifest and service worker as Chrome's install check sees
them, the offline screen (relay unreachable, page open or reloaded) and its recovery, the
notifications toggle, the page's own notifications while hidden, and pushes."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import new_session, open_session, shot
from tests.support.proxy import CuttableProxy
from tests.support.stack import wait_for

pytestmark = pytest.mark.browser

# `ready` resolves once a worker is active, which may still be `activating`: wait for the end.
WORKER_READY = """async () => {
  const reg = await navigator.serviceWorker.ready;
  const worker = reg.active;
  if (worker && worker.state === 'activating') {
    await new Promise(done => worker.addEventListener('statechange', done, {once: true}));
  }
  return {scope: reg.scope, state: reg.active && reg.active.state, script: reg.active && reg.active.scriptURL};
}"""
NOTIFICATIONS = """async () => (await (await navigator.serviceWorker.ready).getNotifications())
  .map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}))"""
# Notifications the page shows itself (`new Notification`), not through its service worker.
PAGE_NOTIFICATIONS = """(() => {
  window.__pageNotices = [];
  const Shown = window.Notification;
  window.Notification = new Proxy(Shown, {construct(target, args) {
    window.__pageNotices.push(args[0]);
    return new target(...args);
  }});
})()"""
INSTALLING = """async () => {
  const registration = await navigator.serviceWorker.getRegistration();
  return Boolean(registration && registration.installing && !registration.active);
}"""
# Headless Chromium shows every page as visible; this stands in for the person switching tabs.
HIDE = """() => {
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_the_app_is_installable(ui: str, new_page) -> None:
    page = new_page()
    page.goto(f"{ui}/")
    page.wait_for_selector("[data-testid=notify-toggle]")
    href = page.eval_on_selector("link[rel=manifest]", "l => l.href")
    assert href == f"{ui}/manifest.webmanifest"
    manifest = page.evaluate("async (url) => (await fetch(url)).json()", href)
    assert manifest["display"] == "standalone"
    assert manifest["name"] == "opencode relay" and manifest["short_name"]
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["theme_color"] == page.eval_on_selector("meta[name=theme-color]", "m => m.content")
    # Every icon decodes as a PNG of the size the manifest states.
    icons = page.evaluate("""async (icons) => Promise.all(icons.map(i => new Promise((ok, fail) => {
        const img = new Image();
        img.onload = () => ok({src: i.src, purpose: i.purpose, sizes: i.sizes, drawn: img.naturalWidth + 'x' + img.naturalHeight});
        img.onerror = () => fail(new Error('no image at ' + i.src));
        img.src = i.src;
    })))""", manifest["icons"])
    assert all(i["drawn"] == i["sizes"] for i in icons), icons
    assert {(i["sizes"], i["purpose"]) for i in icons} >= {
        ("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}
    apple = page.eval_on_selector("link[rel=apple-touch-icon]", "l => l.href")
    assert httpx.get(apple, timeout=10).headers["content-type"] == "image/png"

    worker = page.evaluate(WORKER_READY)
    assert worker == {"scope": f"{ui}/", "state": "activated", "script": f"{ui}/sw.js"}
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    cached = page.evaluate("""async () => {
        const names = (await caches.keys()).filter(n => n.startsWith('relay-shell-'));
        const cache = await caches.open(names[0]);
        return {names, paths: (await cache.keys()).map(r => new URL(r.url).pathname)};
    }""")
    bundle = page.eval_on_selector("script[type=module]", "s => new URL(s.src).pathname")
    assert len(cached["names"]) == 1 and {"/", bundle, "/manifest.webmanifest"} <= set(cached["paths"])
    assert not [p for p in cached["paths"] if p.startswith("/api")]

    # Its fetch handler answers the shell's files from the cache, and never the API or streams.
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r))
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-state=open]")
    served = {httpx.URL(r.url).path: r.from_service_worker for r in responses}
    assert served[bundle] is True and served["/"] is True, served
    assert served["/api/sessions"] is False and served["/api/events"] is False, served

    # Chrome's own install check (what Lighthouse reports): the manifest parses cleanly and
    # nothing blocks installing but the test profile being an incognito-like context.
    cdp = page.context.new_cdp_session(page)
    parsed = cdp.send("Page.getAppManifest")
    assert parsed["errors"] == [] and parsed["manifest"]["display"] == "kStandalone"
    errors = [e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    assert set(errors) <= {"in-incognito"}, errors
    page.errors.check()


def test_offline_screen_says_so_retries_and_steps_aside(proxy: CuttableProxy, api: httpx.Client,
                                                        new_page) -> None:
    sid = new_session(api, "offline test")
    page = new_page()
    open_session(page, proxy.url, sid, record=False)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    screen = page.get_by_test_id("offline-screen")
    assert screen.is_hidden()
    page.evaluate("() => { window.__samePage = true; }")

    # The relay goes away while the page is open: the screen says so and counts down.
    proxy.down()
    screen.wait_for(state="visible", timeout=15_000)
    assert "Cannot reach the relay" in screen.text_content()
    page.wait_for_selector("[data-testid=offline-status]:has-text('Trying again in')")
    shot(page, "offline-screen")
    proxy.up()
    screen.wait_for(state="hidden", timeout=20_000)
    # The same page goes on (no reload), with its streams back.
    assert page.evaluate("() => window.__samePage === true")
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", timeout=20_000)

    # Only a gateway answers (503 without the relay's error body): the relay is unreachable too.
    proxy.refuse(4.0)
    proxy.cut()
    screen.wait_for(state="visible", timeout=15_000)
    screen.wait_for(state="hidden", timeout=30_000)
    assert page.evaluate("() => window.__samePage === true")
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", timeout=20_000)

    # Reloaded while the relay is unreachable: the service worker serves the app, which shows
    # the screen, and loads the session once the relay answers again.
    proxy.down()
    response = page.reload()
    assert response is not None and response.from_service_worker
    screen.wait_for(state="visible", timeout=15_000)
    page.get_by_test_id("offline-retry").click()  # trying now, without waiting, fails again
    page.wait_for_selector("[data-testid=offline-status]:has-text('Trying again in')")
    proxy.up()
    screen.wait_for(state="hidden", timeout=20_000)
    page.wait_for_selector("[data-testid=session-title]:text('offline test')", timeout=20_000)
    page.wait_for_selector("[data-testid=connection-status][data-state=open]", timeout=20_000)
    page.wait_for_selector(f"[data-testid=session-item][data-session-id='{sid}']")
    page.errors.check()


def _permission_script(scripted: ScriptedProvider, script_key: str) -> str:
    return scripted.script(script_key, [
        [{"text": "Checking. "},
         {"tool": "bash", "args": {"command": "echo notify-me", "description": "Echo"}}],
        [{"text": "All done."}],
    ])


def _wait_notification(page: Any, tag: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def shown() -> bool:
        found[:] = [n for n in page.evaluate(NOTIFICATIONS) if n["tag"] == tag]
        return bool(found)

    try:
        wait_for(shown, 120, f"a notification tagged {tag}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; shown: {page.evaluate(NOTIFICATIONS)}") from exc
    assert len(found) == 1, found
    return found[0]


def test_notify_toggle_and_the_hidden_pages_own_notifications(
        ui: str, api: httpx.Client, new_page, scripted: ScriptedProvider, script_key: str) -> None:
    sid = new_session(api, "notify test")
    page = new_page(permissions=["notifications"])
    # The service worker stays installing (its copy of the app's icons held back) until the
    # first notice: one shown meanwhile must wait for it, not go through the page, where
    # Android's Chrome cannot show it and the worker cannot replace it or handle its click.
    held: list[Any] = []
    holding = True

    def hold(route: Any) -> None:
        if holding:
            held.append(route)
        else:
            route.continue_()

    page.context.route("**/assets/icons/**", hold)
    page.add_init_script(PAGE_NOTIFICATIONS)
    open_session(page, ui, sid, record=False)
    toggle = page.get_by_test_id("notify-toggle")
    assert toggle.get_attribute("data-state") == "off"
    toggle.click()
    page.wait_for_selector("[data-testid=notify-toggle]:not([data-state=off]):not([data-state=busy])")
    # Headless Chromium has no push service: the toggle says so and the page tells by itself.
    assert toggle.get_attribute("data-state") == "page"
    assert toggle.get_attribute("aria-pressed") == "true"
    note = page.get_by_test_id("notify-status").text_content()
    assert note.startswith("Push is not available here (") and "while this page is open" in note
    shot(page, "notify-toggle-on")

    page.evaluate(HIDE)
    marker = _permission_script(scripted, script_key)
    assert api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).status_code == 202
    requests = []

    def asked() -> bool:
        requests[:] = api.get(f"/api/sessions/{sid}/requests").json()["permissions"]
        return bool(requests)

    wait_for(asked, 60, "the permission request")
    request_id = requests[0]["id"]
    # The page has the request (its session stream drew it; the global stream, whose events
    # notify, brings the same one), while its worker is still installing.
    page.wait_for_selector(f"[data-testid=permission-prompt][data-request-id='{request_id}']")
    time.sleep(1)
    assert page.evaluate(INSTALLING), "the service worker is active already"
    assert page.evaluate("() => window.__pageNotices") == []
    holding = False
    for route in held:
        route.continue_()
    asking = _wait_notification(page, f"permission:{request_id}")
    assert page.evaluate("() => window.__pageNotices") == []
    assert asking == {"title": "Permission needed: notify test", "body": "Wants to use bash",
                      "tag": f"permission:{request_id}", "url": f"/?session={sid}"}
    reply = api.post(f"/api/sessions/{sid}/permissions/{request_id}", json={"reply": "once"})
    assert reply.status_code == 200, reply.text
    done = _wait_notification(page, f"idle:{sid}")
    assert done == {"title": "Done: notify test", "body": "Finished", "tag": f"idle:{sid}",
                    "url": f"/?session={sid}"}

    # The choice is this browser's: it survives a reload; turning it off is remembered too.
    page.reload()
    page.wait_for_selector("[data-testid=notify-toggle][data-state=page]")
    toggle.click()
    page.wait_for_selector("[data-testid=notify-toggle][data-state=off]")
    assert toggle.get_attribute("aria-pressed") == "false"
    page.reload()
    page.wait_for_selector("[data-testid=notify-toggle][data-state=off]")
    page.errors.check()


def test_notify_toggle_when_the_browser_refuses(ui: str, new_page) -> None:
    page = new_page(permissions=[])
    page.goto(f"{ui}/")
    toggle = page.get_by_test_id("notify-toggle")
    toggle.click()
    page.wait_for_selector("[data-testid=notify-toggle]:not([data-state=busy])")
    state = toggle.get_attribute("data-state")
    note = page.get_by_test_id("notify-status").text_content()
    assert (state, note) in {
        ("blocked", "The browser blocks notifications for this site: allow them in the site's "
                    "settings, then try again."),
        ("off", "Notifications stay off: the browser did not get your permission.")}, (state, note)
    page.errors.check()


def test_push_shows_unless_a_window_is_on_screen(ui: str, api: httpx.Client, new_page) -> None:
    page = new_page(permissions=["notifications"])
    page.goto(f"{ui}/")
    page.evaluate(WORKER_READY)
    helper = page.context.new_page()  # holds the DevTools session while the app's page closes
    cdp = page.context.new_cdp_session(helper)
    registrations: list[dict[str, Any]] = []
    clients: dict[str, list[str]] = {}  # worker version -> the windows it controls
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda e: registrations.extend(e["registrations"]))
    cdp.on("ServiceWorker.workerVersionUpdated", lambda e: clients.update(
        {v["versionId"]: v.get("controlledClients", []) for v in e["versions"]
         if v.get("status") == "activated"}))
    cdp.send("ServiceWorker.enable")
    helper.wait_for_function("() => true")
    helper.wait_for_timeout(300)
    registration = next(r["registrationId"] for r in registrations
                        if r["scopeURL"] == f"{ui}/" and not r["isDeleted"])

    def push(body: str) -> None:
        payload = {"title": "Question from the agent", "body": body, "url": "/?session=ses_push",
                   "tag": "question:que_push", "kind": "question", "sessionID": "ses_push"}
        cdp.send("ServiceWorker.deliverPushMessage",
                 {"origin": ui, "registrationId": registration, "data": json.dumps(payload)})

    push("seen on screen")
    helper.wait_for_timeout(1000)
    assert page.evaluate(NOTIFICATIONS) == []  # the open page tells the person itself

    page.close()
    # Once the worker no longer counts the closed window, a push shows.
    wait_for(lambda: helper.evaluate("1") and clients and not any(clients.values()), 15,
             "the worker to let go of the closed page")
    push("first")
    push("second")  # same tag: replaces the first
    again = page.context.new_page()
    again.goto(f"{ui}/")
    wait_for(lambda: any(n["body"] == "second" for n in again.evaluate(NOTIFICATIONS)), 15,
             "the second push's notification")
    assert again.evaluate(NOTIFICATIONS) == [{
        "title": "Question from the agent", "body": "second", "tag": "question:que_push",
        "url": "/?session=ses_push"}]

    # A click hands the window the session to open (notificationclick: postMessage, then focus);
    # headless Chromium cannot click a notification, so the worker sends what its click sends.
    sid = new_session(api, "opened by a notification")
    assert len(again.context.service_workers) == 1
    again.context.service_workers[0].evaluate("""async (url) => {
        const windows = await self.clients.matchAll({type: 'window'});
        windows[0].postMessage({type: 'relay:open', url});
    }""", f"/?session={sid}")
    again.wait_for_selector("[data-testid=session-title]:text('opened by a notification')")
    assert again.url == f"{ui}/?session={sid}"
