"""Workspace roots (workspace.py): what lies under a root, with symlinks and '..' resolved."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from opencode_relay.config import Settings
from opencode_relay.errors import InvalidInput
from opencode_relay.workspace import Workspace, contains, parse_roots

pytestmark = pytest.mark.unit


def test_roots_are_absolute_colon_separated_paths() -> None:
    assert parse_roots("/a:/b/c: /d ") == ["/a", "/b/c", "/d"]
    for bad in ("", ":", "relative", "/a:rel"):
        with pytest.raises(ValueError):
            parse_roots(bad)
    with pytest.raises(ValueError):
        Settings(workspace_roots="/ok:not/absolute")
    assert Settings(workspace_roots="").workspace_root_list is None  # unset: the default


def test_containment_is_by_whole_path_components() -> None:
    assert contains("/w", "/w") and contains("/w", "/w/a/b") and contains("/", "/etc")
    assert not contains("/w", "/wx") and not contains("/w/a", "/w")


def test_the_default_root_is_made_under_the_data_dir(tmp_path: Path) -> None:
    workspace = Workspace.open(None, tmp_path / "data", None)
    root = str((tmp_path / "data" / "workspace").resolve())
    assert workspace.roots == (root,) and workspace.default == root
    assert os.path.isdir(root)


def test_a_default_directory_outside_the_roots_or_a_missing_root_is_refused(
        tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with pytest.raises(ValueError, match="outside the workspace roots"):
        Workspace.open([str(tmp_path / "root")], tmp_path, str(tmp_path / "elsewhere"))
    with pytest.raises(ValueError, match="not a directory"):
        Workspace.open([str(tmp_path / "nope")], tmp_path, None)
    # A default that does not exist yet is fine (the embedded opencode makes it).
    later = Workspace.open([str(tmp_path / "root")], tmp_path, str(tmp_path / "root" / "later"))
    assert later.default == str(tmp_path / "root" / "later")


def test_check_follows_symlinks_and_dots_before_deciding(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "project" / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "in").symlink_to(root / "project")
    (root / "file").write_text("x")
    # The root itself reached through a symlink still counts.
    (tmp_path / "alias").symlink_to(root)
    workspace = Workspace.open([str(tmp_path / "alias")], tmp_path, None)
    assert workspace.roots == (str(root),)
    assert workspace.check(str(root / "project")) == str(root / "project")
    assert workspace.check(f"{root}/in/sub/") == str(root / "project" / "sub")
    assert workspace.check(f"{root}/project/sub/..") == str(root / "project")
    assert workspace.check(f"{tmp_path}/alias/project") == str(root / "project")
    for escape, reason in [(f"{root}/out", "outside"), (f"{root}/..", "outside"),
                           (f"{root}/project/../../outside", "outside"),
                           ("/etc", "outside"), (f"{root}/missing", "does not exist"),
                           (f"{root}/file", "is a file"), ("project", "not an absolute path")]:
        with pytest.raises(InvalidInput, match=reason):
            workspace.check(escape)
    assert workspace.allows(f"{root}/in") and not workspace.allows(f"{root}/out")


def test_a_default_root_inside_a_checkout_becomes_a_repository_of_its_own(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`make run` keeps its data in ./var of the relay's checkout: opencode would otherwise take
    the checkout (the relay's source tree) as the project of every session in the root."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    root = Workspace.open(None, tmp_path / "var", None).roots[0]
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert top == root
    assert subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=root,
                          capture_output=True, text=True).stdout.strip()  # a first commit
    # Outside any repository the root stays a plain folder.
    plain = Workspace.open(None, tmp_path_factory.mktemp("plain"), None).roots[0]
    assert not os.path.exists(os.path.join(plain, ".git"))
