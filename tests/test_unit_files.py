"""files.py: which paths the file tree and viewer accept, by spelling and on the filesystem."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencode_relay.errors import InvalidInput, NotFound
from opencode_relay.files import clean_path, locate

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
