"""A session as a file: Markdown to read, JSON to keep. Built from the stored transcript.

Markdown: the prompts and answers in order, reasoning when asked for, every tool call with its
input and output (a bash call as its command and output in code blocks), the diffs of file tools
in ```diff blocks (changes.py reads them as the Changes panel does), attached files by name.
JSON: the stored objects, unchanged: `{"session", "messages": [{"info", "parts"}…]}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .changes import FILE_TOOLS, changes_from_parts
from .store.state import JSON, MessageRecord

FORMATS = ("markdown", "json")
_MAX_OUTPUT_CHARS = 200_000  # one tool output; a longer one is cut, saying so


def filename(session: JSON, extension: str) -> str:
    """A safe file name: the title's words (ASCII), then the session id."""
    title = re.sub(r"[^A-Za-z0-9]+", "-", str(session.get("title") or "")).strip("-")[:60]
    return f"{title + '-' if title else ''}{session['id']}.{extension}"


def as_json(session: JSON, records: list[MessageRecord]) -> bytes:
    """The stored objects as they are (raw bytes spliced, not re-encoded)."""
    messages = b",".join(b'{"info":' + r.info + b',"parts":[' + b",".join(r.parts) + b"]}"
                         for r in records)
    return (b'{"session":' + json.dumps(session).encode() + b',"messages":[' + messages
            + b"]}")


def as_markdown(session: JSON, records: list[MessageRecord], reasoning: bool = False) -> str:
    directory = session.get("directory")
    out = [f"# {session.get('title') or session['id']}", ""]
    facts = [f"- Session: `{session['id']}`"]
    if directory:
        facts.append(f"- Directory: `{directory}`")
    created = (session.get("time") or {}).get("created")
    if isinstance(created, int | float):
        facts.append(f"- Created: {_when(created)}")
    out += [*facts, ""]
    for record in records:
        info = json.loads(record.info)
        parts = [json.loads(raw) for raw in record.parts]
        out += _message(info, parts, reasoning, directory)
    return "\n".join(out).rstrip("\n") + "\n"


def _message(info: JSON, parts: list[JSON], reasoning: bool,
             directory: str | None) -> list[str]:
    role = info.get("role")
    when = (info.get("time") or {}).get("created")
    stamp = f" · {_when(when)}" if isinstance(when, int | float) else ""
    if role == "user":
        heading = f"## Prompt{stamp}"
    else:
        model = "/".join(str(x) for x in (info.get("providerID"), info.get("modelID")) if x)
        heading = f"## Answer{f' ({model})' if model else ''}{stamp}"
    out = [heading, ""]
    for part in parts:
        out += _part(part, reasoning, directory)
    error = info.get("error")
    if isinstance(error, dict):
        data = error.get("data")
        message = data.get("message") if isinstance(data, dict) else None
        out += [f"> **Error** ({error.get('name', 'error')}): {message or ''}".rstrip(), ""]
    return out


def _part(part: JSON, reasoning: bool, directory: str | None) -> list[str]:
    kind = part.get("type")
    if kind == "text" and not part.get("synthetic") and not part.get("ignored"):
        return [str(part.get("text", "")).rstrip(), ""]
    if kind == "reasoning" and reasoning and part.get("text"):
        quoted = "\n".join(f"> {line}" for line in str(part["text"]).rstrip().splitlines())
        return ["> *Reasoning*", ">", quoted, ""]
    if kind == "file":
        name = part.get("filename") or part.get("url") or "file"
        return [f"📎 Attached: `{name}` ({part.get('mime', 'unknown type')})", ""]
    if kind == "tool":
        return _tool(part, directory)
    return []


def _tool(part: JSON, directory: str | None) -> list[str]:
    tool = str(part.get("tool", "tool"))
    state: JSON = part.get("state") if isinstance(part.get("state"), dict) else {}  # type: ignore[assignment]
    given = state.get("input")
    inp: JSON = given if isinstance(given, dict) else {}
    status = state.get("status", "pending")
    title = state.get("title")
    out = [f"### Tool: {tool}{f' — {title}' if title else ''} ({status})", ""]
    if tool == "bash" and isinstance(inp.get("command"), str):
        out += _block("bash", inp["command"])
        if inp.get("description"):
            out += [f"*{inp['description']}*", ""]
    elif tool in FILE_TOOLS and status == "completed":
        target = inp.get("filePath")
        if isinstance(target, str):
            out += [f"File: `{target}`", ""]
        for changed in changes_from_parts([part], directory):
            out += [f"`{changed.path}` ({changed.status}, +{changed.additions} "
                    f"-{changed.deletions})", ""]
            out += _block("diff", "\n".join(p.rstrip("\n") for p in changed.patches))
    elif inp:
        out += ["Input:", ""] + _block("json", json.dumps(inp, indent=2, ensure_ascii=False))
    if status == "completed" and tool not in FILE_TOOLS:
        output = state.get("output")
        if isinstance(output, str) and output:
            out += ["Output:", ""] + _block("", _cut(output))
    if status == "error":
        out += ["Error:", ""] + _block("", _cut(str(state.get("error", ""))))
    for attachment in _attachments(state.get("attachments")):
        out += [f"📎 Attached: `{attachment}`", ""]
    return out


def _attachments(found: Any) -> Iterable[str]:
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict):
            yield str(item.get("filename") or item.get("url") or "file")


def _block(language: str, body: str) -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", body.rstrip("\n"), fence, ""]


def _cut(text: str) -> str:
    if len(text) <= _MAX_OUTPUT_CHARS:
        return text
    return text[:_MAX_OUTPUT_CHARS] + f"\n… ({len(text) - _MAX_OUTPUT_CHARS} more characters)"


def _when(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
