"""Browser fixtures: Debian's Chromium driven by Playwright, against the real stack."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.proxy import CuttableProxy
from tests.support.stack import RelayProcess

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "src" / "opencode_relay" / "web" / "dist"
CHROMIUM = os.environ.get("RELAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def web_built() -> Path:
    """The built app; built here if `make` did not do it (must happen before the relay starts)."""
    if not (DIST / "index.html").is_file():
        subprocess.run(["bash", str(ROOT / "scripts" / "build-web.sh")], check=True)
    return DIST


@pytest.fixture(scope="session")
def ui(web_built: Path, relay: RelayProcess) -> str:
    """Base URL of the relay, with the web UI answering at /."""
    index = httpx.get(f"{relay.url}/", timeout=10)
    assert index.status_code == 200, index.text
    asset = next((web_built / "assets").glob("app-*.js")).name
    assert httpx.get(f"{relay.url}/assets/{asset}", timeout=10).status_code == 200, \
        "the relay does not serve /assets: it started before the web UI was built"
    return relay.url


# Per module: the sync API runs an event loop while open, which pytest-asyncio's runner
# must not find running when async tests come after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = f"no Chromium at {CHROMIUM} (scripts/install-browser.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the UI tests, never skip them quietly
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageErrors(list):
    def check(self) -> None:
        assert not self, f"errors in the page: {self}"


@pytest.fixture()
def new_page(browser: object) -> Iterator[Callable[..., object]]:
    """Opens pages in fresh contexts; uncaught page errors fail the test."""
    contexts = []

    def make(**context_args: object) -> object:
        context = browser.new_context(**{"viewport": {"width": 1360, "height": 880}, **context_args})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors = PageErrors()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture()
def proxy(relay: RelayProcess, ui: str) -> Iterator[CuttableProxy]:
    """A TCP proxy in front of the relay whose connections a test can cut."""
    server = CuttableProxy("127.0.0.1", relay.port).start()
    yield server
    server.stop()
