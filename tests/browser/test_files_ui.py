"""The file tree and viewer in the real page: folders load when opened, files open in the viewer."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import open_session, send, shot, wait_idle
from tests.support.stack import git_project, wait_for

pytestmark = pytest.mark.browser

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
SECRET = "never-shown-outside-the-project"


def _project(opencode: EmbeddedOpencode, scripted: ScriptedProvider, key: str) -> Path:
    project = git_project(opencode.directory.parent / f"files-ui-{key}", scripted)
    outside = opencode.directory.parent / f"files-ui-outside-{key}"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (project / "docs" / "deep").mkdir(parents=True)
    (project / "docs" / "deep" / "notes.md").write_text("# Notes\n")
    (project / "pixel.png").write_bytes(PNG)
    (project / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (project / "huge.log").write_text("y" * (3 * 1024 * 1024))
    (project / "escape.txt").symlink_to(outside / "secret.txt")
    (project / "many").mkdir()
    for i in range(400):
        (project / "many" / f"f{i:03d}.txt").write_text(f"{i}\n")
    return project


def _paths(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.get_by_test_id("file-node").evaluate_all("els => els.map(e => e.dataset.path)")


def test_the_tree_loads_folders_when_opened_and_the_viewer_shows_files(
        ui: str, api: httpx.Client, new_page, opencode: EmbeddedOpencode,
        scripted: ScriptedProvider, script_key: str) -> None:
    project = _project(opencode, scripted, script_key)
    written = project / "src" / "app.py"
    marker = scripted.script(script_key, [
        [{"tool": "write", "args": {"filePath": str(written),
                                    "content": "def greet(name):\n    return f'hi {name}'\n"}}],
        [{"text": "Wrote app.py."}]])
    created = api.post("/api/sessions", json={"title": "files", "directory": str(project)})
    assert created.status_code == 200, created.text
    page = new_page()
    trees: list[str] = []
    page.on("request", lambda r: trees.append(r.url) if "/tree?" in r.url else None)
    open_session(page, ui, created.json()["id"])

    tree = page.get_by_test_id("file-tree")
    tree.locator("[data-path='docs']").wait_for()
    assert {"docs", "pixel.png", "blob.bin", "huge.log", "opencode.json"} <= set(_paths(page))
    assert "src" not in _paths(page)  # the agent has not written it yet
    assert not any("/" in p for p in _paths(page))  # only the top folder is read
    assert len(trees) == 1

    # The agent writes a file; the tree reads its open folders again and shows the new folder.
    send(page, f"write the app {marker}")
    wait_idle(page)
    assert written.is_file()
    tree.locator("[data-path='src']").wait_for()

    # A folder is read when it is opened, and not before (refreshes read only open folders).
    read = lambda path: [u for u in trees if u.endswith(f"path={path}")]  # noqa: E731
    assert not read("docs") and not read("docs%2Fdeep")
    tree.locator("[data-path='docs'] > .file-row").click()
    tree.locator("[data-path='docs/deep']").wait_for()
    assert read("docs") and not read("docs%2Fdeep")
    assert "docs/deep/notes.md" not in _paths(page)
    tree.locator("[data-path='docs/deep'] > .file-row").click()
    tree.locator("[data-path='docs/deep/notes.md']").wait_for()
    assert read("docs%2Fdeep")
    tree.locator("[data-path='docs'] > .file-row").click()  # closes it
    assert tree.locator("[data-path='docs/deep']").is_hidden()

    # A big folder: only the rows in view (and a few around them) are in the page; scrolling
    # draws the others.
    tree.locator("[data-path='many'] > .file-row").click()
    tree.locator("[data-path='many/f000.txt']").wait_for()
    wait_for(lambda: int(tree.get_attribute("data-rows") or 0) > 400, 10, "the folder's rows")
    drawn = tree.locator("[data-testid=file-node]").count()
    assert 20 < drawn < 150, drawn
    assert tree.locator("[data-path='many/f399.txt']").count() == 0
    tree.evaluate("t => { t.scrollTop = t.scrollHeight; }")
    tree.locator("[data-path='many/f399.txt']").wait_for()
    assert tree.locator("[data-path='many/f000.txt']").count() == 0
    assert tree.locator("[data-path='many/f399.txt']").is_visible()
    shot(page, "file-tree-scrolled")
    tree.evaluate("t => { t.scrollTop = 0; }")
    tree.locator("[data-path='many'] > .file-row").click()  # closes it

    # The file the agent wrote: highlighted, with line numbers.
    tree.locator("[data-path='src'] > .file-row").click()
    tree.locator("[data-path='src/app.py'] > .file-row").click()
    viewer = page.get_by_test_id("file-viewer")
    page.locator("[data-testid=file-viewer][data-state=text][data-path='src/app.py']").wait_for()
    assert "return f'hi {name}'" in viewer.locator(".code-text").inner_text()
    assert viewer.locator(".code-gutter").inner_text().split() == ["1", "2"]
    assert viewer.locator(".hljs-keyword").first.inner_text() == "def"
    shot(page, "file-viewer-text")
    page.keyboard.press("Escape")
    assert viewer.is_hidden()
    # The focus goes back to the row the file was opened from.
    assert page.evaluate("document.activeElement.title") == "src/app.py"

    # An image is shown as one; other binary and too large files are named, not shown.
    tree.locator("[data-path='pixel.png'] > .file-row").click()
    page.locator("[data-testid=file-viewer][data-state=image]").wait_for()
    wait_for(lambda: viewer.locator("img").evaluate("i => i.complete && i.naturalWidth") == 1,
             10, "the image to load")
    shot(page, "file-viewer-image")
    page.get_by_test_id("file-viewer-close").click()
    tree.locator("[data-path='blob.bin'] > .file-row").click()
    page.locator("[data-testid=file-viewer][data-state=binary]").wait_for()
    assert "binary file" in viewer.inner_text() and "1.0 KiB" in viewer.inner_text()
    page.keyboard.press("Escape")
    tree.locator("[data-path='huge.log'] > .file-row").click()
    page.locator("[data-testid=file-viewer][data-state=too_large]").wait_for()
    assert "too large to show: 3.0 MiB, the limit is 2.0 MiB" in viewer.inner_text()
    page.keyboard.press("Escape")

    # A file that went away after the tree was read: the relay's answer, in plain words.
    (project / "blob.bin").unlink()
    tree.locator("[data-path='blob.bin'] > .file-row").click()
    page.locator("[data-testid=file-viewer][data-state=error]").wait_for()
    assert "'blob.bin' was not found" in page.get_by_test_id("file-viewer-error").inner_text()
    shot(page, "file-viewer-refused")
    page.keyboard.press("Escape")
    # opencode leaves a link out of the directory out of its listing: the tree never shows it.
    assert "escape.txt" not in _paths(page) and SECRET not in page.content()
    shot(page, "file-tree")
    page.errors.check()
