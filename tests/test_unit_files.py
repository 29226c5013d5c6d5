"""files.py: which paths the file tree and viewer accept, by spelling and on the filesystem."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from opencode_relay.errors import InvalidInput, NotFound
from opencode_relay.files import clean_path, locate
from opencode_relay.launch.embedded import EmbeddedRedis
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import relay_client, relay_settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("raw", "clean"), [
    ("", ""), (".", ""), ("./", ""), ("src", "src"), ("src/", "src"), ("./src//a.py", "src/a.py"),
    ("%2e%2e", "%2e%2e"), ("a..b/..c", "a..b/..c"),
    ("dir with space/ü.txt", "dir with space/ü.txt"),
])
def test_clean_paths_are_put_in_one_spelling(raw: str, clean: str) -> None:
    assert clean_path(raw, allow_root=True) == clean


@pytest.mark.parametrize("raw", [
    "..", "../x", "a/../../x", "a/..", "/etc/passwd", "//x", "~/x", "C:/x", "c:x", "a\\b",
    "..\\x", "a\x00b", "a\nb", "a\x7fb", "x" * 4097,
])
def test_paths_that_could_leave_the_directory_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        clean_path(raw, allow_root=True)


def test_a_file_path_must_name_something() -> None:
    with pytest.raises(InvalidInput):
        clean_path("./", allow_root=False)


async def test_locate_follows_links_and_checks_the_kind(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.txt").write_text("hello")
    (outside / "s.txt").write_text("secret")
    (root / "out").symlink_to(outside)
    (root / "out.txt").symlink_to(outside / "s.txt")
    (root / "in.txt").symlink_to(root / "sub" / "a.txt")
    found = await locate(str(root), "sub/a.txt", "file")
    assert found is not None and found.size == 5
    assert (await locate(str(root), "in.txt", "file")) is not None  # a link that stays inside
    assert (await locate(str(root), "", "directory")) is not None
    for relative, kind in (("out", "directory"), ("out/s.txt", "file"), ("out.txt", "file")):
        with pytest.raises(InvalidInput, match="outside"):
            await locate(str(root), relative, kind)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await locate(str(root), "sub/missing.txt", "file")
    with pytest.raises(InvalidInput, match="folder"):
        await locate(str(root), "sub", "file")
    with pytest.raises(InvalidInput, match="file"):
        await locate(str(root), "sub/a.txt", "directory")
    # A directory the relay does not see (opencode elsewhere): opencode's check is what is left.
    assert await locate(str(tmp_path / "elsewhere"), "x", "file") is None


async def test_routes_where_the_relay_does_not_see_the_directory(
        redis_server: EmbeddedRedis) -> None:
    """opencode on another machine (a session in `/fake`, which is not here): the spelling is
    still checked, and sizes and kinds come from opencode's answers."""
    fake = FakeOpencode()
    fake.folders[""] = [
        {"name": "b.txt", "path": "b.txt", "absolute": "/fake/b.txt", "type": "file",
         "ignored": False},
        {"name": "src", "path": "src/", "absolute": "/fake/src", "type": "directory",
         "ignored": False},
        {"name": "A.md", "path": "A.md", "absolute": "/fake/A.md", "type": "file",
         "ignored": True}]
    fake.files["b.txt"] = {"type": "text", "content": "héllo"}
    fake.files["big.txt"] = {"type": "text", "content": "x" * 2000}
    fake.files["i.png"] = {"type": "binary", "content": base64.b64encode(b"\x89PNG..").decode(),
                           "encoding": "base64", "mimeType": "image/png"}
    fake.files["big.png"] = {"type": "binary", "content": base64.b64encode(b"0" * 3000).decode(),
                             "encoding": "base64", "mimeType": "image/png"}
    fake.files["x.bin"] = {"type": "binary", "content": base64.b64encode(b"\0\1\2").decode(),
                           "encoding": "base64", "mimeType": "application/octet-stream"}
    settings = relay_settings(redis_server.url, max_view_bytes=1000)
    async with relay_client(settings, fake) as api:
        # A session made in opencode beside the relay (new ones must be in the workspace roots,
        # which the relay sees): read through from opencode when first named.
        sid = "ses_remote000001"
        fake.sessions[sid] = {"id": sid, "title": "remote", "directory": "/fake",
                              "time": {"created": 1, "updated": 1}}
        tree = (await api.get(f"/api/sessions/{sid}/tree")).json()
        assert tree == {"directory": "/fake", "path": "", "entries": [
            {"name": "src", "path": "src", "type": "directory", "ignored": False},
            {"name": "A.md", "path": "A.md", "type": "file", "ignored": True},
            {"name": "b.txt", "path": "b.txt", "type": "file", "ignored": False}]}

        async def view(path: str) -> dict[str, object]:
            answer = await api.get(f"/api/sessions/{sid}/file", params={"path": path})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        assert await view("b.txt") == {"path": "b.txt", "limit": 1000, "type": "text",
                                       "size": 6, "mime": None, "content": "héllo"}
        assert (await view("big.txt"))["type"] == "too_large"
        assert "content" not in await view("big.txt")
        image = await view("./i.png")
        assert (image["type"], image["size"], image["mime"]) == ("image", 6, "image/png")
        assert (await view("big.png"))["type"] == "too_large"
        assert await view("x.bin") == {"path": "x.bin", "limit": 1000, "type": "binary",
                                       "size": 3, "mime": "application/octet-stream"}
        calls = len(fake.calls)
        for bad in ("../etc/passwd", "/etc/passwd", "a/../../b"):
            refused = await api.get(f"/api/sessions/{sid}/file", params={"path": bad})
            assert refused.status_code == 400, refused.text
        assert len(fake.calls) == calls  # refused before opencode saw anything
        unknown = await api.get("/api/sessions/ses_nope/tree")
        assert unknown.status_code == 404
