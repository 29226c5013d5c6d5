"""Which file parts the relay passes on (attachments.py), without a stack."""

from __future__ import annotations

import base64

import pytest

from opencode_relay.attachments import allowed_mime, check_file_parts, data_url_size
from opencode_relay.errors import AttachmentTooLarge, InvalidInput, UnsupportedMediaType

pytestmark = pytest.mark.unit


def data(raw: bytes, mime: str = "text/plain") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


@pytest.mark.parametrize("mime", ["image/png", "image/svg+xml", "application/pdf", "text/plain",
                                  "text/markdown; charset=utf-8", "IMAGE/JPEG"])
def test_images_pdf_and_text_are_allowed(mime: str) -> None:
    assert allowed_mime(mime)


@pytest.mark.parametrize("mime", ["application/zip", "application/json", "video/mp4", "", "text",
                                  "image/", "/png", "text/plain/x", "a" * 300 + "/b"])
def test_other_types_are_not(mime: str) -> None:
    assert not allowed_mime(mime)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 1000, 1001, 1002])
def test_the_decoded_size_of_a_data_url(size: int) -> None:
    assert data_url_size(data(b"x" * size)) == size
    assert data_url_size("data:text/plain," + "%41" * size) == size


def test_a_broken_data_url_is_bad_input() -> None:
    for url in ("data:text/plain;base64,@@@@", "data:text/plain;base64,abc", "nodata"):
        with pytest.raises(InvalidInput):
            data_url_size(url)


def test_file_parts_are_checked_for_type_size_and_place() -> None:
    def part(url: str, mime: str = "text/plain") -> dict[str, str]:
        return {"type": "file", "mime": mime, "filename": "f", "url": url}

    check_file_parts([{"type": "text", "text": "hi"}, part(data(b"x" * 10)),
                      part("file:///work/p/src/a%20b.py")], "/work/p", 10)
    with pytest.raises(AttachmentTooLarge):
        check_file_parts([part(data(b"x" * 11))], "/work/p", 10)
    with pytest.raises(UnsupportedMediaType):
        check_file_parts([part(data(b"x"), "application/zip")], "/work/p", 10)
    for outside in ("file:///etc/passwd", "file:///work/p/../q/x", "file:///work/pq/x",
                    "https://example.com/x", "file://relative", "file://host/work/p/a"):
        with pytest.raises(InvalidInput):
            check_file_parts([part(outside)], "/work/p", 10)
    with pytest.raises(InvalidInput):  # no directory known: no file:// at all
        check_file_parts([part("file:///work/p/a")], None, 10)
