"""Files in a prompt (opencode's file parts): which the relay passes on, and how big.

A file part is opencode's own shape: `{"type": "file", "mime", "filename"?, "url"}`, where
`url` is a `data:` URL (an attachment: image, PDF or text the browser sends) or a `file://` URL
of a file in the session's directory (an @-mention, read by opencode). Anything else is refused
here, before opencode sees it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import AttachmentTooLarge, InvalidInput, UnsupportedMediaType

ALLOWED = "images (image/*), PDF (application/pdf) and text (text/*)"
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME = re.compile(rf"^{_TOKEN}/{_TOKEN}$")


def allowed_mime(mime: str) -> bool:
    kind = mime.split(";", 1)[0].strip().lower()
    if not _MIME.match(kind):
        return False
    return kind.startswith(("image/", "text/")) or kind == "application/pdf"


def data_url_size(url: str) -> int:
    """Bytes a `data:` URL carries, decoded (InvalidInput when it is not one)."""
    head, comma, payload = url.partition(",")
    if not comma or not head.lower().startswith("data:"):
        raise InvalidInput("an attachment's url must be a data: URL")
    if head.lower().endswith(";base64"):
        compact = payload.strip()
        if len(compact) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", compact):
            raise InvalidInput("an attachment's data: URL is not valid base64")
        return len(compact) * 3 // 4 - compact.count("=", len(compact) - 2)
    return len(unquote(payload).encode())


def _inside(path: str, directory: str | None) -> bool:
    if not directory or not path.startswith("/"):
        return False
    root = posixpath.normpath(directory)
    target = posixpath.normpath(path)
    return target == root or target.startswith(root.rstrip("/") + "/")


def check_file_parts(parts: Iterable[dict[str, Any]], directory: str | None,
                     max_bytes: int) -> None:
    """Refuses a file part with a type other than image/PDF/text (UnsupportedMediaType), a
    `data:` URL larger than `max_bytes` (AttachmentTooLarge), or a `file://` URL outside the
    session's directory or any other URL (InvalidInput)."""
    for part in parts:
        if part.get("type") != "file":
            continue
        name = str(part.get("filename") or "attachment")
        mime = str(part.get("mime", ""))
        if not allowed_mime(mime):
            raise UnsupportedMediaType(f"{name!r} has type {mime[:100]!r}; "
                                       f"only {ALLOWED} can be attached")
        url = str(part.get("url", ""))
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            if data_url_size(url) > max_bytes:
                raise AttachmentTooLarge(name, max_bytes)
        elif scheme == "file":
            where = urlsplit(url)
            path = unquote(where.path)
            if where.netloc not in ("", "localhost") or not _inside(path, directory):
                raise InvalidInput(f"{name!r} is not a file in the session's directory")
        else:
            raise InvalidInput("a file part's url must be a data: URL or a file:// URL")

