"""Share tokens' shape and the Markdown export's rendering, without a stack."""

from __future__ import annotations

import json

import pytest

from opencode_relay.export import as_markdown, filename
from opencode_relay.shares import Share, token_session
from opencode_relay.store.state import MessageRecord

pytestmark = pytest.mark.unit

SID = "ses_abc123"


def test_a_token_names_its_session_only_when_well_formed() -> None:
    secret = "A" * 43
    assert token_session(f"{SID}.{secret}") == SID
    for bad in [f"{SID}.{secret}x", f"{SID}.{secret[:-1]}", f"{SID}{secret}", f"msg_1.{secret}",
                f"{SID}.{secret}/x", "", f"{SID}.{'A' * 42}!"]:
        assert token_session(bad) is None, bad


def test_a_share_expires_at_its_time_and_never_without_one() -> None:
    share = Share("shr_1", SID, 100.0, 160.0, "tok_a")
    assert not share.expired(159.9) and share.expired(160.0)
    assert not Share("shr_2", SID, 100.0, None, "tok_a").expired(1e12)
    assert share.public()["expiresAt"] == 160_000


def _record(info: dict[str, object], *parts: dict[str, object]) -> MessageRecord:
    return MessageRecord(json.dumps(info).encode(), [json.dumps(p).encode() for p in parts])


def test_markdown_fences_outlast_backticks_and_reasoning_is_optional() -> None:
    session = {"id": SID, "title": "Fences & `ticks`", "directory": "/w"}
    records = [
        _record({"id": "msg_1", "role": "user"},
                {"type": "text", "text": "show me"},
                {"type": "file", "filename": "shot.png", "mime": "image/png"}),
        _record({"id": "msg_2", "role": "assistant", "providerID": "p", "modelID": "m"},
                {"type": "reasoning", "text": "thinking hard"},
                {"type": "tool", "tool": "bash", "state": {
                    "status": "completed", "input": {"command": "cat x.md"},
                    "output": "```py\nprint(1)\n```"}},
                {"type": "tool", "tool": "edit", "state": {
                    "status": "completed", "input": {"filePath": "/w/a.txt"},
                    "metadata": {"diff": "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n+y\n"}}},
                {"type": "text", "text": "done"}),
    ]
    text = as_markdown(session, records)
    assert "## Prompt" in text and "## Answer (p/m)" in text
    assert "📎 Attached: `shot.png` (image/png)" in text
    assert "````\n```py\nprint(1)\n```\n````" in text  # a longer fence around the output
    assert "```diff\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n+y\n```" in text
    assert "`a.txt` (modified, +1 -1)" in text
    assert "thinking hard" not in text
    assert "> thinking hard" in as_markdown(session, records, reasoning=True)
    assert filename(session, "md") == f"Fences-ticks-{SID}.md"
