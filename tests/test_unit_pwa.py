"""The installable app's files: served at the root, to anyone the auth gate lets see the page,
with the types and cache rules browsers need (the service worker's scope is its folder)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from opencode_relay.app import WEB_DIST
from opencode_relay.launch.embedded import EmbeddedRedis
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import REMOTE, relay_client, relay_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist() -> Path:
    if not (WEB_DIST / "sw.js").is_file():
        subprocess.run(["bash", str(ROOT / "scripts" / "build-web.sh")], check=True)
    return WEB_DIST


@pytest.fixture()
def fake() -> FakeOpencode:
    return FakeOpencode()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_manifest_worker_and_icons_load_without_credentials(
        dist: Path, redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    # Auth on, a caller on another machine with no token: the page's files load, the API does not.
    settings = relay_settings(redis_server.url, auth=True)
    async with relay_client(settings, fake, client=REMOTE) as anonymous:
        assert (await anonymous.get("/api/sessions")).status_code == 401

        worker = await anonymous.get("/sw.js")
        assert worker.status_code == 200
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["service-worker-allowed"] == "/"
        assert worker.headers["cache-control"] == "no-cache"
        assert "relay-shell-" in worker.text and "/api/" in worker.text

        answer = await anonymous.get("/manifest.webmanifest")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/manifest+json"
        manifest = json.loads(answer.content)
        assert manifest["display"] == "standalone"
        assert manifest["start_url"] == "/" and manifest["scope"] == "/"
        assert manifest["name"] and manifest["short_name"] and manifest["theme_color"]

        sizes = {}
        for icon in manifest["icons"]:
            image = await anonymous.get(icon["src"])
            assert image.status_code == 200, icon
            assert image.headers["content-type"] == "image/png"
            width, height = png_size(image.content)
            assert icon["sizes"] == f"{width}x{height}"
            sizes[(width, icon["purpose"])] = icon["src"]
        assert {(192, "any"), (512, "any"), (512, "maskable")} <= set(sizes)

        page = (await anonymous.get("/")).text
        assert '<link rel="manifest" href="/manifest.webmanifest">' in page
        apple = page.split('rel="apple-touch-icon"')[1].split('href="')[1].split('"')[0]
        assert png_size((await anonymous.get(apple)).content) == (180, 180)


async def test_the_worker_caches_the_shell_of_this_build_only(dist: Path) -> None:
    worker = (dist / "sw.js").read_text()
    page = (dist / "index.html").read_text()
    bundle = page.split('<script type="module" src="')[1].split('"')[0]
    # The worker keeps exactly this build's bundle, so a new build installs a new worker.
    assert bundle in worker and bundle.startswith("/assets/app-")
    assert "/manifest.webmanifest" in worker
    # Code loaded on demand (the terminal's xterm.js) is part of the shell too.
    chunks = sorted(p.name for p in (dist / "assets").glob("chunk-*.js"))
    assert chunks and all(f"/assets/{name}" in worker for name in chunks)
