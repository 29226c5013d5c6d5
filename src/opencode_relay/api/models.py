"""Request bodies: what a client may send, checked before anything reaches opencode."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from ..ids import MESSAGE_ID, SESSION_ID
from ..teams import NAME_PATTERN

# opencode fails (500) on a path component over 255 bytes or on a path that is a file, and
# URL-decodes the directory it is given once more, so '%' would name another directory and '%00'
# breaks it: all refused here. A relative directory would be taken from opencode's own working
# folder, which the caller cannot know: refused too.
DIRECTORY_PATTERN = r"^/(?:[^/\x00%]{0,255}/)*[^/\x00%]{0,255}$"


def _a_usable_directory(path: str) -> str:
    if any(len(part.encode()) > 255 for part in path.split("/")):
        raise ValueError("a path component is longer than 255 bytes")
    # Only what this machine can see: an opencode elsewhere may have folders the relay has not.
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{path!r} is a file, not a directory")
    return path


Directory = Annotated[str, StringConstraints(max_length=4096, pattern=DIRECTORY_PATTERN),
                      AfterValidator(_a_usable_directory)]


class CreateSession(BaseModel):
    # Other fields opencode accepts (agent, model, permission, metadata…) pass through.
    model_config = ConfigDict(extra="allow")
    title: str | None = Field(default=None, max_length=1000)
    parentID: str | None = Field(default=None, pattern=SESSION_ID)
    directory: Directory | None = Field(default=None, min_length=1,
                                        description="Project directory (relay extension)")
    upstream: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="opencode server to create it on (relay extension)")
    team: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="The team (its name) the session is made for; the caller must be one of "
                    "its members or admins. Left out: the caller's only such team, if it has "
                    "exactly one; null: no team (relay extension)")


class RenameSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=1000)


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providerID: str = Field(min_length=1)
    modelID: str = Field(min_length=1)


def _one_content_schema(schema: dict[str, Any]) -> None:
    """Says in the OpenAPI document what `Prompt._one_content` checks: text or parts, not both."""
    schema["oneOf"] = [{"required": ["text"], "properties": {"text": {"type": "string"}}},
                       {"required": ["parts"], "properties": {"parts": {"type": "array"}}}]


def _check_file_shapes(parts: list[dict[str, Any]]) -> None:
    """A file part in opencode's shape; its type and size are the domain's (attachments.py)."""
    for part in parts:
        if part.get("type") == "file" and not (
                isinstance(part.get("mime"), str) and isinstance(part.get("url"), str)
                and isinstance(part.get("filename", ""), str)):
            raise ValueError("a file part needs 'mime' and 'url' strings (and 'filename', "
                             "if given, a string)")


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_content_schema)
    text: str | None = Field(default=None, min_length=1)
    parts: list[dict[str, Any]] | None = Field(default=None, min_length=1, json_schema_extra={
        "items": {"type": "object", "required": ["type"],
                  "properties": {"type": {"type": "string"}}}})
    agent: str | None = Field(default=None, min_length=1, max_length=200)
    model: ModelRef | str | None = Field(default=None, json_schema_extra={
        "pattern": "[^/]/+[^/]", "description": "'provider/model' or {providerID, modelID}"})
    messageID: str | None = Field(default=None, pattern=MESSAGE_ID)
    system: str | None = None
    variant: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Prompt:
        if (self.text is None) == (self.parts is None):
            raise ValueError("give exactly one of 'text' or 'parts'")
        if self.parts is not None and not all(isinstance(p.get("type"), str) for p in self.parts):
            raise ValueError("every part needs a 'type'")
        _check_file_shapes(self.parts or [])
        if isinstance(self.model, str) and "/" not in self.model.strip("/"):
            raise ValueError("model must be 'provider/model' or {providerID, modelID}")
        return self

    def to_opencode(self) -> dict[str, Any]:
        body: dict[str, Any] = {"parts": self.parts or [{"type": "text", "text": self.text}]}
        if isinstance(self.model, str):
            provider, _, model = self.model.partition("/")
            body["model"] = {"providerID": provider, "modelID": model}
        elif self.model is not None:
            body["model"] = self.model.model_dump()
        for name in ("agent", "messageID", "system", "variant"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body


class PermissionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reply: Literal["once", "always", "reject"]
    message: str | None = Field(default=None, max_length=10_000)


class QuestionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: list[list[str]]


class RunCommand(BaseModel):
    """A slash command: opencode expands its template with `arguments` and runs it."""

    model_config = ConfigDict(extra="forbid")
    command: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/][^\s]*$",
                         description="The command's name, without the leading '/'")
    arguments: str = Field(default="", max_length=100_000)
    agent: str | None = Field(default=None, min_length=1, max_length=200)
    model: ModelRef | str | None = Field(default=None, json_schema_extra={
        "pattern": "[^/]/+[^/]", "description": "'provider/model' or {providerID, modelID}"})
    variant: str | None = Field(default=None, max_length=200)
    parts: list[dict[str, Any]] | None = Field(default=None, json_schema_extra={
        "description": "Files to send along (file parts, as for a prompt)",
        "items": {"type": "object", "required": ["type", "mime", "url"],
                  "properties": {"type": {"const": "file"}, "mime": {"type": "string"},
                                 "url": {"type": "string"}, "filename": {"type": "string"}}}})

    @model_validator(mode="after")
    def _valid(self) -> RunCommand:
        if isinstance(self.model, str) and "/" not in self.model.strip("/"):
            raise ValueError("model must be 'provider/model' or {providerID, modelID}")
        if self.parts and any(p.get("type") != "file" for p in self.parts):
            raise ValueError("a command takes only file parts")
        _check_file_shapes(self.parts or [])
        return self

    def model_ref(self) -> dict[str, str] | None:
        if isinstance(self.model, str):
            provider, _, model = self.model.partition("/")
            return {"providerID": provider, "modelID": model}
        return self.model.model_dump() if self.model is not None else None

    def to_opencode(self) -> dict[str, Any]:
        """opencode's body: its `model` is the 'provider/model' string."""
        body: dict[str, Any] = {"command": self.command, "arguments": self.arguments}
        ref = self.model_ref()
        if ref:
            body["model"] = f"{ref['providerID']}/{ref['modelID']}"
        for name in ("agent", "variant", "parts"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        return body


# ----- Web Push (api/push.py) --------------------------------------------------------------
_BASE64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=86, max_length=90, pattern=_BASE64URL,
                        description="The browser's P-256 public key, base64url (65 bytes)")
    auth: str = Field(min_length=22, max_length=24, pattern=_BASE64URL,
                      description="The browser's auth secret, base64url (16 bytes)")


class PushSubscribe(BaseModel):
    """What the browser's `PushSubscription.toJSON()` gives."""

    endpoint: str = Field(min_length=10, max_length=2048,
                          description="The push service's URL for this browser (https)")
    expirationTime: float | None = Field(default=None, ge=0,
                                         description="When it expires (ms since the epoch)")
    keys: PushKeys


class PushUnsubscribe(BaseModel):
    endpoint: str = Field(min_length=1, max_length=2048)


class CreateShare(BaseModel):
    """A read-only share link (shares.py); without `expiresIn` it lasts until revoked."""

    model_config = ConfigDict(extra="forbid")
    expiresIn: int | None = Field(default=None, ge=60, le=366 * 86400,
                                  description="Seconds until the link stops working")
