"""What opencode's ids look like: a prefix (`ses`, `msg`, `per`, `que`), then up to 128
characters in all of [A-Za-z0-9_-]. One rule for path parameters (api/ids.py) and look-ups."""

from __future__ import annotations

import re

from .errors import InvalidInput


def id_pattern(prefix: str) -> str:
    return rf"^{prefix}[A-Za-z0-9_-]{{1,{128 - len(prefix)}}}$"


SESSION_ID = id_pattern("ses")
MESSAGE_ID = id_pattern("msg")
PERMISSION_ID = id_pattern("per")
QUESTION_ID = id_pattern("que")
TERMINAL_ID = id_pattern("pty")
SHARE_ID = id_pattern("shr")  # the relay's own: a share link's public id


def check_id(kind: str, prefix: str, value: str) -> str:
    if not re.match(id_pattern(prefix), value):
        raise InvalidInput(f"{value[:60]!r} is not a {kind} id (expected '{prefix}…')")
    return value
