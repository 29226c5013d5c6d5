"""Which paths of a session's directory the file tree and the file viewer may read.

A path comes from the browser, relative to the session's directory, and is checked twice:

1. by its spelling (`clean_path`): relative, no `..` segment, no NUL or other control character,
   no absolute or drive form, no backslash. It is decoded once, by the HTTP layer; a `%2e%2e`
   that is left is taken literally, as a name, never decoded again.
2. where the relay sees the directory on its own filesystem (`locate`): symlinks resolved, it
   must stay inside the directory, exist, and be of the kind asked for (a folder for the tree,
   a file for the viewer). Where the relay does not see it (opencode on another machine),
   opencode's own check is what is left: it refuses paths that leave its directory.
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidInput, NotFound

MAX_PATH_CHARS = 4096
Kind = Literal["file", "directory"]


def clean_path(raw: str, *, allow_root: bool) -> str:
    """The path in one spelling (`a/b/c`, `""` for the directory itself); InvalidInput for
    anything that could name something outside the session's directory."""
    if len(raw) > MAX_PATH_CHARS:
        raise InvalidInput(f"path is longer than {MAX_PATH_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise InvalidInput("path must not contain NUL or other control characters")
    if "\\" in raw:
        raise InvalidInput("path must use '/' as separator, not '\\'")
    if raw.startswith("/") or raw.startswith("~") or (raw[1:2] == ":" and raw[:1].isalpha()):
        raise InvalidInput("path must be relative to the session's directory, not absolute")
    segments = [s for s in raw.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidInput("path must not contain '..' segments")
    if not segments and not allow_root:
        raise InvalidInput("path must name a file of the session's directory")
    return "/".join(segments)


@dataclass(frozen=True)
class Located:
    """What `locate` found on the relay's own filesystem."""

    kind: Kind
    size: int


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _locate(directory: str, relative: str, want: Kind) -> Located | None:
    if not os.path.isabs(directory) or not os.path.isdir(directory):
        return None  # not on this machine (or not yet): opencode's own check applies
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, relative))
    if not _inside(root, target):
        raise InvalidInput(f"{relative!r} leads outside the session's directory "
                           "(through a symbolic link)")
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise NotFound("file" if want == "file" else "folder", relative) from None
    except OSError as exc:
        raise InvalidInput(f"{relative!r} cannot be read: {exc.strerror}") from None
    kind: Kind | None = ("directory" if stat.S_ISDIR(info.st_mode)
                         else "file" if stat.S_ISREG(info.st_mode) else None)
    if kind is None:
        raise InvalidInput(f"{relative!r} is neither a regular file nor a folder")
    if kind != want:
        raise InvalidInput(f"{relative or '.'!r} is a {'folder' if kind == 'directory' else 'file'}"
                           f", not a {'folder' if want == 'directory' else 'file'}")
    return Located(kind, info.st_size)


async def locate(directory: str | None, relative: str, want: Kind) -> Located | None:
    """Checks a clean path against the filesystem when the relay sees `directory` (None when it
    does not): InvalidInput if it leaves the directory or is not a `want`, NotFound if missing."""
    if not directory:
        raise InvalidInput("the session has no directory")
    return await asyncio.to_thread(_locate, directory, relative, want)
